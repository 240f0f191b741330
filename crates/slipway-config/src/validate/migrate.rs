//! `migrate:` of an app: `check`, `up`, `down`, `reversible`, `timeout`.

use super::{Checker, Item};
use crate::model::{DEFAULT_HOOK_TIMEOUT, Migrate};

const MIGRATE_KEYS: &[&str] = &["check", "up", "down", "reversible", "timeout"];

impl<'a> Checker<'a> {
    pub(super) fn migrate(&mut self, item: &Item<'a>) -> Option<Migrate> {
        let f = self.fields(item, MIGRATE_KEYS);
        let mut command = |key: &str| f.get(key).and_then(|i| self.nonempty_string(&i));
        let check = command("check");
        let up = command("up");
        let down = command("down");
        let reversible = f
            .get("reversible")
            .and_then(|i| self.boolean(&i))
            .unwrap_or(true);
        let timeout = match f.get("timeout") {
            Some(i) => self.positive_duration(&i)?,
            None => DEFAULT_HOOK_TIMEOUT,
        };
        if let (Some(at), None) = (f.get("down"), f.get("up")) {
            let d = self
                .diag(
                    at.pos,
                    &at.path,
                    "`down` without `up`: there is nothing to undo",
                )
                .with_hint(Some(
                    "add the `up` command that `down` undoes, or remove `down`".to_owned(),
                ));
            self.push(d);
            return None;
        }
        Some(Migrate {
            check,
            up,
            down,
            reversible,
            timeout,
        })
    }
}
