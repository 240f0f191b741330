//! `slipway user add`: the token alone on stdout so `TOKEN=$(slipway user add …)` works.

use crate::client::Client;
use crate::error::Result;

pub async fn add(client: &Client, name: &str, role: &str) -> Result<u8> {
    let user = client.add_user(name, role).await?.data;
    errln!(
        "created a token for {} ({}); it is shown only once, keep it safe",
        user.name,
        user.role
    );
    if user.replaced_token {
        errln!("{}'s previous token no longer works", user.name);
    }
    outln!("{}", user.token);
    Ok(0)
}
