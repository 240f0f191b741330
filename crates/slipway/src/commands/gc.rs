//! `slipway gc [--dry-run]`: the instances labelled for the server that no deployment
//! owns, through `/api/v1/gc`: listed, or removed (admin).

use slipway_api::LeftoverView;

use crate::client::Client;
use crate::error::Result;
use crate::output::Table;

pub async fn run(client: &Client, dry_run: bool, json: bool) -> Result<u8> {
    if dry_run {
        let listed = client.leftovers().await?;
        if json {
            super::print_json(&listed.raw);
            return Ok(0);
        }
        let leftovers = &listed.data.leftovers;
        if leftovers.is_empty() {
            outln!("no leftovers: every instance of this server belongs to a deployment");
        } else {
            outln!("{}", table(leftovers.iter().map(|l| (l, "would remove"))));
            outln!("{} leftover(s); `slipway gc` removes them", leftovers.len());
        }
        return Ok(0);
    }
    let done = client.gc().await?;
    if json {
        super::print_json(&done.raw);
        return Ok(0);
    }
    let (removed, skipped) = (&done.data.removed, &done.data.skipped);
    if removed.is_empty() && skipped.is_empty() {
        outln!("no leftovers: nothing to remove");
        return Ok(0);
    }
    let rows = removed
        .iter()
        .map(|l| (l, "removed"))
        .chain(skipped.iter().map(|s| (&s.leftover, s.reason.as_str())));
    outln!("{}", table(rows));
    outln!("removed {}, left {}", removed.len(), skipped.len());
    Ok(0)
}

/// One row per leftover, with what happened to it when `gc` ran.
fn table<'a>(rows: impl Iterator<Item = (&'a LeftoverView, &'a str)>) -> String {
    let mut t = Table::new(&[
        "NAME",
        "DRIVER",
        "APP",
        "ENVIRONMENT",
        "RELEASE",
        "STATE",
        "GC",
    ]);
    for (l, done) in rows {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let name = if l.name.is_empty() {
            l.handle.clone()
        } else {
            l.name.clone()
        };
        let state = if l.running { "running" } else { "stopped" };
        t.row(vec![
            name,
            l.driver.clone(),
            or_dash(&l.app),
            or_dash(&l.environment),
            or_dash(&l.release),
            state.into(),
            done.into(),
        ]);
    }
    t.render().trim_end().to_owned()
}
