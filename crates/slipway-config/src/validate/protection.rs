//! Environment protection: reviewers, approvals, wait timer, branches, windows.

use std::collections::BTreeMap;

use super::{Checker, Item};
use crate::model::*;
use crate::scalar::{self, did_you_mean};
use crate::tree::{Node, quote};

const PROTECTION_KEYS: &[&str] = &[
    "reviewers",
    "required_approvals",
    "prevent_self_review",
    "wait_timer",
    "branches",
    "windows",
];

impl<'a> Checker<'a> {
    pub(super) fn protection(
        &mut self,
        item: &Item<'a>,
        users: &BTreeMap<String, User>,
    ) -> Protection {
        let f = self.fields(item, PROTECTION_KEYS);
        let reviewers = match f.get("reviewers") {
            Some(list) => self.reviewers(&list, users),
            None => Vec::new(),
        };
        let default_approvals = u32::from(!reviewers.is_empty());
        let required_approvals = match f.get("required_approvals") {
            Some(i) => self.required_approvals(&i, &reviewers, default_approvals),
            None => default_approvals,
        };
        let prevent_self_review = f
            .get("prevent_self_review")
            .and_then(|i| self.boolean(&i))
            .unwrap_or(false);
        let wait_timer = f.get("wait_timer").and_then(|i| self.duration(&i));
        let branches = match f.get("branches") {
            Some(i) => self
                .list(&i, "branch patterns")
                .iter()
                .filter_map(|b| self.nonempty_string(b))
                .collect(),
            None => Vec::new(),
        };
        let windows = match f.get("windows") {
            Some(i) => self
                .list(&i, "windows")
                .iter()
                .filter_map(|w| self.window(w))
                .collect(),
            None => Vec::new(),
        };
        Protection {
            reviewers,
            required_approvals,
            prevent_self_review,
            wait_timer,
            branches,
            windows,
        }
    }

    /// The reviewer names, each listed once; unknown users are reported but kept.
    fn reviewers(&mut self, list: &Item<'a>, users: &BTreeMap<String, User>) -> Vec<String> {
        let mut reviewers: Vec<String> = Vec::new();
        for reviewer in self.list(list, "user names") {
            let Some(name) = self.nonempty_string(&reviewer) else {
                continue;
            };
            if reviewers.contains(&name) {
                let d = self.diag(
                    reviewer.pos,
                    &reviewer.path,
                    format!("reviewer {} is listed twice", quote(&name)),
                );
                self.push(d);
                continue;
            }
            if !users.contains_key(&name) {
                self.unknown_reviewer(&reviewer, &name, users);
            }
            reviewers.push(name);
        }
        reviewers
    }

    fn unknown_reviewer(&mut self, reviewer: &Item, name: &str, users: &BTreeMap<String, User>) {
        let expected = if users.is_empty() {
            "a user defined under `users:`".to_owned()
        } else {
            format!(
                "one of the users: {}",
                users
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let hint = did_you_mean(name, users.keys().map(String::as_str))
            .or_else(|| Some(format!("add `{name}` under `users:`")));
        let d = self
            .diag(
                reviewer.pos,
                &reviewer.path,
                format!("unknown user {}", quote(name)),
            )
            .with_expected(expected)
            .with_hint(hint);
        self.push(d);
    }

    fn required_approvals(&mut self, i: &Item, reviewers: &[String], default: u32) -> u32 {
        let n = self.u32(i, 0).unwrap_or(default);
        if !reviewers.is_empty() && n as usize > reviewers.len() {
            let count = reviewers.len();
            let d = self
                .diag(
                    i.pos,
                    &i.path,
                    format!(
                        "{n} approvals are required but only {count} reviewer{} listed",
                        if count == 1 { " is" } else { "s are" }
                    ),
                )
                .with_expected(format!("at most {count}"))
                .with_hint(Some(
                    "add reviewers or lower `required_approvals`".to_owned(),
                ));
            self.push(d);
        }
        n
    }

    fn window(&mut self, w: &Item) -> Option<Window> {
        let Node::Str(text) = &w.node.value else {
            self.wrong_type(
                w,
                "a window like `Mon-Thu 09:00-16:00 UTC`",
                Some(scalar::WINDOW_EXPECTED),
                None,
            );
            return None;
        };
        scalar::window(text)
            .map_err(|e| self.scalar_error(w, e, scalar::WINDOW_EXPECTED))
            .ok()
    }
}
