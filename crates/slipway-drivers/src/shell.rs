//! Runs one shell command to completion (a hook, a migration, a pipeline step): `/bin/sh -c`
//! in a process group of its own, with a built environment ([`workload_env`]), its output
//! handed to the caller line by line as it comes, and a timeout that ends the whole group.
//!
//! The run ends when the shell exits, not when its pipes close: a background child
//! (`sleep 1000 & echo started`) keeps them open for as long as it lives. Whatever is left
//! of the group then is ended too, so nothing a command started outlives its run.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::env::workload_env;
use crate::procfs;

/// How often the group is looked at while it is being ended.
const POLL: Duration = Duration::from_millis(10);
/// How long the kernel gets to finish a SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long output still in the pipes is read once the group is gone. Only a process that
/// left the group (`setsid`) can hold a pipe open past that.
const DRAIN: Duration = Duration::from_millis(500);
/// A longer line is handed over in pieces of this many bytes, so one endless line cannot
/// take the server's memory.
const MAX_LINE: usize = 16 * 1024;
/// Default grace between SIGTERM and SIGKILL when the group is ended.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// Run with `/bin/sh -c`.
    pub command: String,
    /// What the config gives the command (variables, `SLIPWAY_*`), over the small
    /// allowlist of [`workload_env`]; nothing else of the server's environment.
    pub env: BTreeMap<String, String>,
    /// Working directory; the server's when `None`.
    pub workdir: Option<PathBuf>,
    /// The whole group is ended when the command runs longer.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL when the group is ended.
    pub grace: Duration,
}

impl ShellCommand {
    pub fn new(command: impl Into<String>, timeout: Duration) -> ShellCommand {
        ShellCommand {
            command: command.into(),
            env: BTreeMap::new(),
            workdir: None,
            timeout,
            grace: DEFAULT_GRACE,
        }
    }
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// A note of the runner itself (a timeout, processes it ended).
    Runner,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: Stream,
    /// Without its line end; invalid UTF-8 replaced.
    pub text: String,
}

/// How the run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The shell exited (with a code, or killed by a signal).
    Exited(ExitStatus),
    /// It ran longer than its timeout; its whole group was ended.
    TimedOut(Duration),
    /// `/bin/sh` could not be started (a missing working directory, say).
    NotStarted(std::io::Error),
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited(status) if status.success())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::unix::process::ExitStatusExt;
        match self {
            Outcome::Exited(status) => match (status.code(), status.signal()) {
                (Some(code), _) => write!(f, "exited with status {code}"),
                (None, Some(signal)) => write!(f, "was killed by signal {signal}"),
                (None, None) => write!(f, "ended with {status}"),
            },
            Outcome::TimedOut(after) => {
                write!(
                    f,
                    "ran longer than {after:?} and was killed with its children"
                )
            }
            Outcome::NotStarted(error) => write!(f, "could not start: {error}"),
        }
    }
}

#[derive(Debug)]
pub struct ShellRun {
    pub outcome: Outcome,
    /// Processes of the group still running when the shell exited, which were ended.
    pub leftovers: Vec<u32>,
}

/// Runs `cmd`, handing each line of its output to `sink` as soon as it is complete.
/// Dropping the returned future (a cancelled run) kills the whole group.
pub async fn run_shell(cmd: &ShellCommand, mut sink: impl FnMut(OutputLine) + Send) -> ShellRun {
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(&cmd.command)
        .env_clear()
        .envs(workload_env(&cmd.env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so the timeout reaches everything it started at once.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = &cmd.workdir {
        command.current_dir(dir);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return ShellRun {
                outcome: Outcome::NotStarted(error),
                leftovers: Vec::new(),
            };
        }
    };
    // Unreaped, the child has its pid; the group keeps that id while any member lives.
    let Some(pgid) = child.id() else {
        return ShellRun {
            outcome: Outcome::NotStarted(std::io::Error::other("the shell has no pid")),
            leftovers: Vec::new(),
        };
    };
    let mut group = Group { pgid, live: true };
    let mut out = Pipe::new(child.stdout.take(), Stream::Stdout);
    let mut err = Pipe::new(child.stderr.take(), Stream::Stderr);

    let deadline = Instant::now() + cmd.timeout;
    let exited = loop {
        tokio::select! {
            lines = out.read(), if out.is_open() => lines.into_iter().for_each(&mut sink),
            lines = err.read(), if err.is_open() => lines.into_iter().for_each(&mut sink),
            status = child.wait() => break status.ok(),
            _ = tokio::time::sleep_until(deadline) => break None,
        }
    };

    let (outcome, leftovers) = match exited {
        Some(status) => {
            let leftovers = procfs::group_members(pgid);
            if !leftovers.is_empty() {
                sink(note(format!(
                    "the shell exited and left {} process(es) of its group running (pid {}); ending them",
                    leftovers.len(),
                    join(&leftovers)
                )));
                group.end(cmd.grace).await;
            }
            (Outcome::Exited(status), leftovers)
        }
        None => {
            sink(note(format!(
                "timed out after {:?}; ending its process group",
                cmd.timeout
            )));
            group.end(cmd.grace).await;
            // Killed with its group; reap it.
            let _ = tokio::time::timeout(KILL_WAIT, child.wait()).await;
            (Outcome::TimedOut(cmd.timeout), Vec::new())
        }
    };
    if group.live && !procfs::group_has_live_member(pgid) {
        group.live = false;
    }

    // What was written before the end is still in the pipes.
    let drain_until = Instant::now() + DRAIN;
    while out.is_open() || err.is_open() {
        tokio::select! {
            lines = out.read(), if out.is_open() => lines.into_iter().for_each(&mut sink),
            lines = err.read(), if err.is_open() => lines.into_iter().for_each(&mut sink),
            _ = tokio::time::sleep_until(drain_until) => {
                sink(note("a process outside the command's group still holds its output; the rest is not kept".to_owned()));
                break;
            }
        }
    }
    for line in [out.rest(), err.rest()].into_iter().flatten() {
        sink(line);
    }
    ShellRun { outcome, leftovers }
}

/// SIGKILLs the process group of every live process whose initial environment has
/// `name=value`, and returns their pids: what commands of a server that died (so never
/// ended them) left running, found by the marker the caller gave them in `env`.
pub fn end_groups_marked(name: &str, value: &str) -> Vec<u32> {
    let marked: Vec<(u32, i64)> = procfs::pids()
        .into_iter()
        .filter(|&pid| procfs::env_var(pid, name).as_deref() == Some(value))
        .filter_map(|pid| {
            let stat = procfs::stat(pid).filter(|s| !s.is_dead())?;
            Some((pid, stat.pgrp))
        })
        .collect();
    for &(_, pgrp) in &marked {
        if let Ok(pgrp) = i32::try_from(pgrp)
            && pgrp > 1
        {
            let _ = killpg(Pid::from_raw(pgrp), Signal::SIGKILL);
        }
    }
    marked.into_iter().map(|(pid, _)| pid).collect()
}

fn note(text: String) -> OutputLine {
    OutputLine {
        stream: Stream::Runner,
        text,
    }
}

fn join(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

// === impl Group ===

/// The command's process group. While `live`, dropping it kills the group: a cancelled
/// run leaves nothing behind. Once it is known to be gone it is never signalled again, so
/// a later group that happens to get the same id is safe.
struct Group {
    pgid: u32,
    live: bool,
}

impl Group {
    /// SIGTERM to the group, SIGKILL to what is left after `grace`.
    async fn end(&mut self, grace: Duration) {
        for (signal, wait) in [(Signal::SIGTERM, grace), (Signal::SIGKILL, KILL_WAIT)] {
            if !self.signal(signal) || self.gone_within(wait).await {
                self.live = false;
                return;
            }
        }
    }

    /// `false` when the group no longer exists.
    fn signal(&self, signal: Signal) -> bool {
        // A pid fits an i32 on Linux, and is never 0 or 1 for a process we started.
        let Ok(pgid) = i32::try_from(self.pgid) else {
            return false;
        };
        killpg(Pid::from_raw(pgid), signal).is_ok()
    }

    async fn gone_within(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if !procfs::group_has_live_member(self.pgid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.live {
            self.signal(Signal::SIGKILL);
        }
    }
}

// === impl Pipe ===

/// One output pipe, cut into lines.
struct Pipe<R> {
    reader: Option<R>,
    stream: Stream,
    pending: Vec<u8>,
    chunk: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> Pipe<R> {
    fn new(reader: Option<R>, stream: Stream) -> Pipe<R> {
        Pipe {
            reader,
            stream,
            pending: Vec::new(),
            chunk: vec![0; 8192].into_boxed_slice(),
        }
    }

    fn is_open(&self) -> bool {
        self.reader.is_some()
    }

    /// Reads once; returns the lines completed by it (and the unfinished one at the end of
    /// the output). Cancel-safe: a read that did not finish took nothing.
    async fn read(&mut self) -> Vec<OutputLine> {
        let Some(reader) = self.reader.as_mut() else {
            return Vec::new();
        };
        match reader.read(&mut self.chunk).await {
            Ok(0) | Err(_) => {
                self.reader = None;
                self.rest().into_iter().collect()
            }
            Ok(n) => {
                self.pending.extend_from_slice(&self.chunk[..n]);
                self.lines()
            }
        }
    }

    fn lines(&mut self) -> Vec<OutputLine> {
        let mut lines = Vec::new();
        loop {
            let cut = match self.pending.iter().position(|b| *b == b'\n') {
                Some(i) if i <= MAX_LINE => (i, 1),
                _ if self.pending.len() >= MAX_LINE => (MAX_LINE, 0),
                _ => return lines,
            };
            let rest = self.pending.split_off(cut.0 + cut.1);
            let mut line = std::mem::replace(&mut self.pending, rest);
            line.truncate(cut.0);
            lines.push(self.line(&line));
        }
    }

    /// The unfinished last line, if any.
    fn rest(&mut self) -> Option<OutputLine> {
        if self.pending.is_empty() {
            return None;
        }
        let line = std::mem::take(&mut self.pending);
        Some(self.line(&line))
    }

    fn line(&self, bytes: &[u8]) -> OutputLine {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        OutputLine {
            stream: self.stream,
            text: String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    /// Runs `cmd` and returns its result with every line the sink got.
    async fn run_collect(cmd: &ShellCommand) -> (ShellRun, Vec<OutputLine>) {
        let mut lines = Vec::new();
        let run = run_shell(cmd, |line| lines.push(line)).await;
        (run, lines)
    }

    fn texts(lines: &[OutputLine], stream: Stream) -> Vec<&str> {
        lines
            .iter()
            .filter(|l| l.stream == stream)
            .map(|l| l.text.as_str())
            .collect()
    }

    /// The pid a command printed as `pid=N`.
    fn printed_pid(lines: &[OutputLine]) -> u32 {
        lines
            .iter()
            .find_map(|l| l.text.strip_prefix("pid=")?.parse().ok())
            .expect("the command prints pid=N")
    }

    fn alive(pid: u32) -> bool {
        procfs::stat(pid).is_some_and(|s| !s.is_dead())
    }

    /// Kills the `sleep` a test started when the test ends, also when it fails (and only
    /// while that pid still runs `sleep`).
    struct Reap(u32);
    impl Drop for Reap {
        fn drop(&mut self) {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
            if let (true, Ok(pid)) = (cmdline.starts_with(b"sleep"), i32::try_from(self.0)) {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }

    #[tokio::test]
    async fn reports_exit_status_and_keeps_both_streams() {
        let cmd = ShellCommand::new("echo one; echo two >&2; printf 'no newline'; exit 3", LONG);
        let (run, lines) = run_collect(&cmd).await;
        assert!(
            matches!(run.outcome, Outcome::Exited(s) if s.code() == Some(3)),
            "{:?}",
            run.outcome
        );
        assert!(!run.outcome.success());
        assert_eq!(run.outcome.to_string(), "exited with status 3");
        assert_eq!(texts(&lines, Stream::Stdout), ["one", "no newline"]);
        assert_eq!(texts(&lines, Stream::Stderr), ["two"]);
        assert!(run.leftovers.is_empty());

        let (ok, _) = run_collect(&ShellCommand::new("true", LONG)).await;
        assert!(ok.outcome.success());
    }

    #[tokio::test]
    async fn a_background_child_does_not_hold_the_run_and_is_ended() {
        let started = Instant::now();
        let cmd = ShellCommand::new("sleep 1000 & echo pid=$!; echo started", LONG);
        let (run, lines) = run_collect(&cmd).await;
        let sleep = printed_pid(&lines);
        let _reap = Reap(sleep);
        assert!(run.outcome.success(), "{}", run.outcome);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            texts(&lines, Stream::Stdout),
            [&format!("pid={sleep}"), "started"]
        );
        assert_eq!(run.leftovers, [sleep]);
        assert!(
            texts(&lines, Stream::Runner)
                .iter()
                .any(|l| l.contains("left 1 process") && l.contains(&sleep.to_string())),
            "{lines:?}"
        );
        assert!(!alive(sleep), "the background sleep {sleep} still runs");
    }

    #[tokio::test]
    async fn a_timeout_ends_the_whole_group() {
        let cmd = ShellCommand::new("sleep 1000 & echo pid=$!; wait", Duration::from_millis(300));
        let (run, lines) = run_collect(&cmd).await;
        let sleep = printed_pid(&lines);
        let _reap = Reap(sleep);
        assert!(
            matches!(run.outcome, Outcome::TimedOut(_)),
            "{:?}",
            run.outcome
        );
        assert!(!run.outcome.success());
        assert!(
            texts(&lines, Stream::Runner)
                .iter()
                .any(|l| l.contains("timed out")),
            "{lines:?}"
        );
        assert!(!alive(sleep), "the child {sleep} outlived the timeout");
    }

    #[tokio::test]
    async fn a_group_that_ignores_sigterm_gets_sigkill_after_the_grace() {
        let mut cmd = ShellCommand::new(
            "trap '' TERM; sleep 1000 & echo pid=$!; wait",
            Duration::from_millis(200),
        );
        cmd.grace = Duration::from_millis(200);
        let started = Instant::now();
        let (run, lines) = run_collect(&cmd).await;
        let sleep = printed_pid(&lines);
        let _reap = Reap(sleep);
        assert!(
            matches!(run.outcome, Outcome::TimedOut(_)),
            "{:?}",
            run.outcome
        );
        assert!(!alive(sleep));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn output_is_streamed_before_the_command_ends() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("go");
        // The command only ends once the test has seen its first line.
        let cmd = ShellCommand::new(
            format!(
                "echo first; while [ ! -e '{}' ]; do sleep 0.02; done; echo second",
                flag.display()
            ),
            LONG,
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = seen.clone();
        let flag_for_sink = flag.clone();
        let run = run_shell(&cmd, move |line| {
            if line.text == "first" {
                std::fs::write(&flag_for_sink, "").unwrap();
            }
            sink_seen.lock().unwrap().push(line.text);
        });
        let run = tokio::time::timeout(LONG, run)
            .await
            .expect("the command ended");
        assert!(run.outcome.success());
        assert_eq!(*seen.lock().unwrap(), ["first", "second"]);
    }

    #[tokio::test]
    async fn the_environment_is_built_not_inherited() {
        // Set for this test process by cargo; a workload must not see it.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let mut cmd = ShellCommand::new("env", LONG);
        cmd.env = BTreeMap::from([("GREETING".into(), "hello there".into())]);
        let (run, lines) = run_collect(&cmd).await;
        assert!(run.outcome.success());
        let names: Vec<&str> = texts(&lines, Stream::Stdout)
            .into_iter()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        assert!(texts(&lines, Stream::Stdout).contains(&"GREETING=hello there"));
        for name in &names {
            // What the shell sets on its own is fine; nothing else of ours.
            assert!(
                [
                    "GREETING", "PATH", "HOME", "LANG", "TZ", "PWD", "SHLVL", "_", "OLDPWD"
                ]
                .contains(name),
                "{name} leaked into the environment: {names:?}"
            );
        }
    }

    #[tokio::test]
    async fn runs_in_the_working_directory_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = ShellCommand::new("pwd", LONG);
        cmd.workdir = Some(dir.path().to_path_buf());
        let (_, lines) = run_collect(&cmd).await;
        let want = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(texts(&lines, Stream::Stdout), [want.to_str().unwrap()]);
    }

    #[tokio::test]
    async fn a_missing_working_directory_means_it_could_not_start() {
        let mut cmd = ShellCommand::new("true", LONG);
        cmd.workdir = Some("/nonexistent/slipway-test".into());
        let (run, lines) = run_collect(&cmd).await;
        assert!(
            matches!(run.outcome, Outcome::NotStarted(_)),
            "{:?}",
            run.outcome
        );
        assert!(run.outcome.to_string().starts_with("could not start: "));
        assert!(lines.is_empty());
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_bad_utf8_is_replaced() {
        let cmd = ShellCommand::new(
            format!(
                "head -c {} /dev/zero | tr '\\0' x; echo; printf 'caf\\351\\r\\n'",
                MAX_LINE + 10
            ),
            LONG,
        );
        let (_, lines) = run_collect(&cmd).await;
        let out = texts(&lines, Stream::Stdout);
        assert_eq!(
            out.len(),
            3,
            "{:?}",
            out.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1], "x".repeat(10));
        assert_eq!(out[2], "caf\u{fffd}");
    }

    #[test]
    fn marked_groups_left_behind_are_ended_and_others_are_not() {
        use std::os::unix::process::CommandExt as _;
        let spawn = |mark: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", "sleep 1000 & wait"])
                .env("SLIPWAY_TEST_MARK", mark)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let mut ours = spawn("run-7");
        let mut other = spawn("run-8");
        // Each `sh` leads a group of its own with its `sleep`: end both groups, also when
        // an assertion fails.
        struct ReapGroup(u32);
        impl Drop for ReapGroup {
            fn drop(&mut self) {
                if let Ok(pgid) = i32::try_from(self.0) {
                    let _ = nix::sys::signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                }
            }
        }
        let _reap = (ReapGroup(ours.id()), ReapGroup(other.id()));
        let ended = loop {
            // A just-spawned process shows its environment once it has exec'd.
            let ended = end_groups_marked("SLIPWAY_TEST_MARK", "run-7");
            if !ended.is_empty() {
                break ended;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(ended.contains(&ours.id()), "{ended:?}");
        assert!(ours.wait().unwrap().code().is_none(), "killed by a signal");
        assert!(alive(other.id()));
        drop(_reap);
        let _ = other.wait();
    }

    #[tokio::test]
    async fn dropping_the_run_kills_the_group() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let cmd = ShellCommand::new("sleep 1000 & echo pid=$!; wait", LONG);
        let task = tokio::spawn(async move {
            run_shell(&cmd, |line| {
                if let (Some(pid), Some(tx)) = (line.text.strip_prefix("pid="), tx.take()) {
                    let _ = tx.send(pid.parse::<u32>().unwrap());
                }
            })
            .await
        });
        let sleep = tokio::time::timeout(LONG, rx).await.unwrap().unwrap();
        let _reap = Reap(sleep);
        task.abort();
        let _ = task.await;
        let deadline = Instant::now() + LONG;
        while alive(sleep) {
            assert!(
                Instant::now() < deadline,
                "{sleep} outlived its cancelled run"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}
