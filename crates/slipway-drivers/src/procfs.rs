//! The few facts the process driver reads from Linux's /proc. Everything here answers from
//! /proc alone, so it works for processes this server did not start (re-adoption).

use std::fs;

/// The environment variable that marks a process as a slipway instance.
pub(crate) const INSTANCE_MARKER: &str = "SLIPWAY_INSTANCE";
/// The environment variable that says whose instance it is.
pub(crate) const SCOPE_MARKER: &str = "SLIPWAY_SCOPE";

/// The fields of `/proc/<pid>/stat` the driver needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// `R`, `S`, `D`, `Z` (zombie), `X` (dead), …
    pub state: char,
    pub pgrp: i64,
    /// Field 22: clock ticks after boot the process started. With the pid it identifies
    /// one process for the life of the machine, which a pid alone does not.
    pub start_time: u64,
}

impl Stat {
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// `None` when the process does not exist (or /proc cannot be read).
pub(crate) fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // Field 2 is the command name in parentheses and may itself hold spaces and `)`, so
    // the fixed fields start after the last `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4 (ppid) and 5 (pgrp); then 6..=21 before the start time.
    let pgrp = fields.nth(1)?.parse().ok()?;
    let start_time = fields.nth(16)?.parse().ok()?;
    Some(Stat {
        state,
        pgrp,
        start_time,
    })
}

/// Whether the process's initial environment names it a slipway instance; `None` when
/// the environment cannot be read (another user's process, or it just exited) or reads
/// empty, which it also does for a moment while the process runs `exec`.
pub(crate) fn has_instance_marker(pid: u32) -> Option<bool> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    if environ.is_empty() {
        return None;
    }
    let prefix = format!("{INSTANCE_MARKER}=");
    Some(
        environ
            .split(|b| *b == 0)
            .any(|var| var.starts_with(prefix.as_bytes())),
    )
}

/// The value of `name` in the process's initial environment.
pub(crate) fn env_var(pid: u32, name: &str) -> Option<String> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    environ
        .split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Every pid in /proc.
pub(crate) fn pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// Whether any live (non-zombie) process belongs to process group `pgid`. Zombies do not
/// count: a reparented one may never be reaped when pid 1 does not reap.
pub(crate) fn group_has_live_member(pgid: u32) -> bool {
    !group_members(pgid).is_empty()
}

/// The live (non-zombie) processes of process group `pgid`.
pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&pid| stat(pid).is_some_and(|s| s.pgrp == i64::from(pgid) && !s.is_dead()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let line = "4242 (my) app (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                pgrp: 4242,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = stat(std::process::id()).unwrap();
        assert!(!me.is_dead());
        assert!(me.start_time > 0);
    }
}
