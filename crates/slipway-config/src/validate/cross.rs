//! Checks across sections: `requires` that exist and form no cycle, listeners that clash.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{Checker, Item, one_of};
use crate::scalar::did_you_mean;
use crate::tree::quote;

/// Per environment (by index), the environments it requires, with the item naming each.
type Edges<'e, 'a> = Vec<Vec<(usize, &'e Item<'a>)>>;

impl<'a> Checker<'a> {
    pub(super) fn check_requires(&mut self, envs: &[(String, Vec<(String, Item<'a>)>)]) {
        let names: Vec<&str> = envs.iter().map(|(n, _)| n.as_str()).collect();
        let edges = self.requires_edges(envs, &names);
        self.report_cycles(&names, &edges);
    }

    /// Resolves each `requires` entry to an environment, reporting self, repeated and
    /// unknown references.
    fn requires_edges<'e>(
        &mut self,
        envs: &'e [(String, Vec<(String, Item<'a>)>)],
        names: &[&str],
    ) -> Edges<'e, 'a> {
        let mut edges: Edges<'e, 'a> = vec![Vec::new(); envs.len()];
        for (from, (name, refs)) in envs.iter().enumerate() {
            let mut seen = HashSet::new();
            for (target, item) in refs {
                if target == name {
                    let d = self
                        .diag(
                            item.pos,
                            &item.path,
                            format!("environment {} requires itself", quote(name)),
                        )
                        .with_hint(Some(
                            "list the environments that must succeed first".to_owned(),
                        ));
                    self.push(d);
                } else if !seen.insert(target.as_str()) {
                    let d = self.diag(
                        item.pos,
                        &item.path,
                        format!("{} is listed twice", quote(target)),
                    );
                    self.push(d);
                } else if let Some(to) = names.iter().position(|n| n == target) {
                    edges[from].push((to, item));
                } else {
                    self.unknown_environment(item, target, name, names);
                }
            }
        }
        edges
    }

    fn unknown_environment(&mut self, item: &Item, target: &str, name: &str, names: &[&str]) {
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != name).collect();
        let expected = if others.is_empty() {
            "another environment defined under `environments:`".to_owned()
        } else {
            one_of(&others)
        };
        let d = self
            .diag(
                item.pos,
                &item.path,
                format!("unknown environment {}", quote(target)),
            )
            .with_expected(expected)
            .with_hint(did_you_mean(target, others.iter().copied()));
        self.push(d);
    }

    /// Each cycle is reported once, at the entry that closes it.
    fn report_cycles(&mut self, names: &[&str], edges: &Edges) {
        let targets: Vec<Vec<usize>> = edges
            .iter()
            .map(|e| e.iter().map(|&(to, _)| to).collect())
            .collect();
        for cycle in slipway_pipeline::dag::find_cycles(&targets) {
            let item = edges[cycle.node][cycle.edge].1;
            let path: Vec<&str> = cycle.path.iter().map(|&n| names[n]).collect();
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("`requires` forms a cycle: {}", path.join(" -> ")),
                )
                .with_hint(Some("remove one of these requirements".to_owned()));
            self.push(d);
        }
    }

    pub(super) fn check_listeners(&mut self) {
        let mut listeners = std::mem::take(&mut self.listeners);
        listeners.sort_by_key(|l| l.pos);
        for (i, later) in listeners.iter().enumerate() {
            let clash = listeners[..i]
                .iter()
                .find(|earlier| clashes(earlier.addr, later.addr));
            if let Some(earlier) = clash {
                let d = self
                    .diag(
                        later.pos,
                        &later.path,
                        format!("address {} is already used by {}", later.addr, earlier.path),
                    )
                    .with_hint(Some(
                        "every listener needs its own port (port 0 picks a free one)".to_owned(),
                    ));
                self.push(d);
            }
        }
    }
}

/// Whether two listeners could not both bind: same port, and the same IP or a wildcard.
fn clashes(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && a.is_ipv4() == b.is_ipv4()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
