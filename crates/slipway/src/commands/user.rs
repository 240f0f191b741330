//! `slipway user add`: the token alone on stdout so `TOKEN=$(slipway user add …)` works.

use crate::client::{Client, Role};
use crate::error::{Error, Result};

pub async fn add(client: &Client, name: &str, role: &str) -> Result<u8> {
    let role = match role {
        "viewer" => Role::Viewer,
        "deployer" => Role::Deployer,
        "approver" => Role::Approver,
        "admin" => Role::Admin,
        other => {
            return Err(Error::Usage(format!(
                "--role {other:?}: one of viewer, deployer, approver, admin"
            )));
        }
    };
    let user = client.add_user(name, role).await?.data;
    errln!(
        "created a token for {} ({}); it is shown only once, keep it safe",
        user.name,
        user.role.as_str()
    );
    if user.replaced_token {
        errln!("{}'s previous token no longer works", user.name);
    }
    outln!("{}", user.token);
    Ok(0)
}
