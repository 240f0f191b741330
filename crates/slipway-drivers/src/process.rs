//! The process driver: every instance is `/bin/sh -c <run>` in its own process group,
//! writing to a log file, so it outlives the server and a signal to the server's group.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::env::workload_env;
use crate::procfs::{self, INSTANCE_MARKER, SCOPE_MARKER};
use crate::{Driver, Error, InstanceSpec, Result, Started, Workload};

/// How often `stop` looks whether the group is gone.
const POLL: Duration = Duration::from_millis(10);
/// How long `stop` waits for the kernel to finish a SIGKILL before giving up.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Fills `{port}` and `{version}` in a `run:` template. The version comes from whoever
/// creates the deployment and the result runs through `/bin/sh -c`, so a version with
/// anything beyond `[A-Za-z0-9._+:@/=,%-]` is single-quoted to stay one word.
pub fn render_command(template: &str, port: u16, version: &str) -> String {
    template
        .replace("{port}", &port.to_string())
        .replace("{version}", &shell_word(version))
}

fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._+:@/=,%-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// === impl ProcessHandle ===

/// Identity of a process instance: its pid and its start time (field 22 of
/// `/proc/<pid>/stat`), so a process that later reuses the pid is never mistaken for it.
/// Written as `pid:<pid>:<start time>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessHandle {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcessHandle {
    /// The handle of the process that runs as `pid` now.
    pub fn of_pid(pid: u32) -> Result<ProcessHandle> {
        let stat = procfs::stat(pid).ok_or(Error::NoSuchProcess(pid))?;
        Ok(ProcessHandle {
            pid,
            start_time: stat.start_time,
        })
    }

    /// True while this very process runs: same start time, not a zombie, and, when its
    /// environment is readable, marked as a slipway instance.
    pub fn is_running(&self) -> bool {
        match procfs::stat(self.pid) {
            Some(s) if s.start_time == self.start_time && !s.is_dead() => {
                procfs::has_instance_marker(self.pid) != Some(false)
            }
            _ => false,
        }
    }

    /// Whether signalling process group `pid` reaches this instance's group and nothing
    /// else. The kernel does not hand out a pid while a process group still uses it as its
    /// id, so: if the pid is free, any group of that id is what is left of ours; if it is
    /// taken by a process with another start time, ours is long gone.
    fn group_is_ours(&self) -> bool {
        procfs::stat(self.pid).is_none_or(|s| s.start_time == self.start_time)
    }

    fn pgid(&self) -> Pid {
        // `FromStr` guarantees 2 <= pid <= i32::MAX.
        Pid::from_raw(self.pid as i32)
    }
}

impl fmt::Display for ProcessHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid:{}:{}", self.pid, self.start_time)
    }
}

impl FromStr for ProcessHandle {
    type Err = Error;

    fn from_str(s: &str) -> Result<ProcessHandle> {
        let bad = || Error::BadHandle(s.to_owned());
        let rest = s.strip_prefix("pid:").ok_or_else(bad)?;
        let (pid, start_time) = rest.split_once(':').ok_or_else(bad)?;
        let pid: u32 = pid.parse().map_err(|_| bad())?;
        // Process groups 0 and 1 mean "our own group" and "init" to kill(2): never valid.
        if pid < 2 || i32::try_from(pid).is_err() {
            return Err(bad());
        }
        let start_time = start_time.parse().map_err(|_| bad())?;
        Ok(ProcessHandle { pid, start_time })
    }
}

// === impl ProcessDriver ===

/// Runs instances as local processes. It holds no state: everything it needs to know
/// about an instance is in its handle and /proc, so a restarted server picks up where the
/// previous one left.
#[derive(Debug, Clone, Default)]
pub struct ProcessDriver {
    _private: (),
}

impl ProcessDriver {
    pub fn new() -> ProcessDriver {
        ProcessDriver::default()
    }
}

#[async_trait::async_trait]
impl Driver for ProcessDriver {
    async fn start(&self, spec: &InstanceSpec) -> Result<Started> {
        let Workload::Process {
            command,
            log_path,
            workdir,
        } = &spec.workload
        else {
            return Err(Error::WrongWorkload(spec.workload.kind()));
        };
        let port = free_port()?;
        let command = render_command(command, port, &spec.version);
        // A file, never a pipe: a pipe would break (SIGPIPE) once this server exits.
        let log = open_log(log_path)?;
        let log_err = log.try_clone().map_err(|source| Error::Log {
            path: log_path.clone(),
            source,
        })?;
        fs::create_dir_all(workdir).map_err(|source| Error::Workdir {
            path: workdir.clone(),
            source,
        })?;

        let mut env = spec.env.clone();
        env.extend([
            ("PORT".to_owned(), port.to_string()),
            ("SLIPWAY_APP".to_owned(), spec.app.clone()),
            ("SLIPWAY_ENV".to_owned(), spec.environment.clone()),
            ("SLIPWAY_VERSION".to_owned(), spec.version.clone()),
            (INSTANCE_MARKER.to_owned(), spec.instance_id.clone()),
            (SCOPE_MARKER.to_owned(), spec.scope.clone()),
        ]);

        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&command)
            .current_dir(workdir)
            // Built, not inherited: the server's own tokens must not reach the app.
            .env_clear()
            .envs(workload_env(&env))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own group: a Ctrl-C or signal to the server's group does not reach it,
            // and `stop` can signal everything the command spawned at once.
            .process_group(0)
            .kill_on_drop(false)
            .spawn()
            .map_err(|source| Error::Spawn {
                command: command.clone(),
                source,
            })?;
        // The child cannot be reaped before `wait` below, so its /proc entry is there
        // even if it already exited.
        let pid = child.id().ok_or(Error::NoSuchProcess(0))?;
        let handle = ProcessHandle::of_pid(pid);
        if handle.is_err() {
            // Without a handle nobody could ever stop it.
            let _ = child.start_kill();
        }
        // Reap it when it exits so it does not linger as a zombie. Dropping this task
        // (runtime shutdown) leaves the process running.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        let handle = handle?;

        Ok(Started {
            handle: handle.to_string(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            pid,
        })
    }

    async fn stop(&self, handle: &str, grace: Duration) -> Result<()> {
        let handle: ProcessHandle = handle.parse()?;
        if !handle.group_is_ours() {
            return Ok(());
        }
        if !signal_group(&handle, Signal::SIGTERM)? {
            return Ok(());
        }
        if wait_group_gone(handle.pid, grace).await {
            return Ok(());
        }
        if !signal_group(&handle, Signal::SIGKILL)? {
            return Ok(());
        }
        if wait_group_gone(handle.pid, KILL_WAIT).await {
            Ok(())
        } else {
            Err(Error::Unkillable {
                pgid: handle.pid,
                waited: KILL_WAIT,
            })
        }
    }

    async fn is_running(&self, handle: &str) -> bool {
        handle
            .parse::<ProcessHandle>()
            .is_ok_and(|h| h.is_running())
    }

    /// The live process-group leaders whose environment carries `SLIPWAY_SCOPE=scope`:
    /// each instance runs in a group of its own, led by the process the driver started.
    async fn instances(&self, scope: &str) -> Vec<(String, String)> {
        procfs::pids()
            .into_iter()
            .filter(|&pid| {
                procfs::stat(pid).is_some_and(|s| s.pgrp == i64::from(pid) && !s.is_dead())
            })
            .filter(|&pid| procfs::env_var(pid, SCOPE_MARKER).as_deref() == Some(scope))
            .filter_map(|pid| {
                let id = procfs::env_var(pid, INSTANCE_MARKER)?;
                Some((id, ProcessHandle::of_pid(pid).ok()?.to_string()))
            })
            .collect()
    }
}

/// A port nobody listens on now, picked below the kernel's ephemeral range: outgoing
/// connections (the router's to other instances among them) take ephemeral ports, so one
/// picked there could be taken before the instance binds it. Another process binding the
/// same port explicitly can still win the race; the instance then fails its health check,
/// like any other start failure. Ports handed out recently are skipped, so instances
/// started together (a rolling batch) never race each other for the same port.
pub(crate) fn free_port() -> Result<u16> {
    static RECENT: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());
    const REMEMBER: usize = 256;
    let below = below_ephemeral();
    let mut recent = RECENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut port = 0;
    for attempt in 0..64u32 {
        let wanted = below.as_ref().map_or(0, |range| {
            let span = u64::from(range.end - range.start);
            range.start + (RandomState::new().hash_one(attempt) % span) as u16
        });
        let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, wanted)) {
            Ok(listener) => listener,
            Err(_) if wanted != 0 => continue,
            Err(error) => return Err(Error::Port(error)),
        };
        port = listener.local_addr().map_err(Error::Port)?.port();
        if !recent.contains(&port) {
            break;
        }
    }
    if port == 0 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::Port)?;
        port = listener.local_addr().map_err(Error::Port)?.port();
    }
    if recent.len() == REMEMBER {
        recent.pop_front();
    }
    recent.push_back(port);
    Ok(port)
}

/// Ports from 20000 up to the start of the ephemeral range (Linux), when that leaves a
/// few thousand; `None` elsewhere, and `free_port` asks the kernel for any port.
fn below_ephemeral() -> Option<std::ops::Range<u16>> {
    const FLOOR: u16 = 20_000;
    let range = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u16 = range.split_whitespace().next()?.parse().ok()?;
    (low >= FLOOR + 2_000).then_some(FLOOR..low)
}

/// Opens the instance's log for appending. Apps print what they should not (a connection
/// string, a token), so a new log is readable by the server's user only (0600), and a
/// directory made for it too (0700).
fn open_log(path: &std::path::Path) -> Result<File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let err = |source| Error::Log {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)
}

/// Sends `signal` to the group; `false` when the group no longer exists.
fn signal_group(handle: &ProcessHandle, signal: Signal) -> Result<bool> {
    match killpg(handle.pgid(), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(e) => Err(Error::Signal {
            pgid: handle.pid,
            source: e.into(),
        }),
    }
}

/// Polls until no live process is left in group `pgid`; `false` if `within` passes first.
async fn wait_group_gone(pgid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if !procfs::group_has_live_member(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_placeholders() {
        assert_eq!(
            render_command(
                "app --port {port} --release {version} # {port}",
                8080,
                "v1.2"
            ),
            "app --port 8080 --release v1.2 # 8080"
        );
        assert_eq!(render_command("true", 1, "v1"), "true");
    }

    #[test]
    fn quotes_versions_the_shell_would_split_or_run() {
        assert_eq!(
            render_command("x {version}", 1, "sha-3f2a9c1"),
            "x sha-3f2a9c1"
        );
        assert_eq!(
            render_command("x {version}", 1, "v1; rm -rf /"),
            "x 'v1; rm -rf /'"
        );
        assert_eq!(render_command("x {version}", 1, "it's"), r"x 'it'\''s'");
        assert_eq!(render_command("x {version}", 1, ""), "x ''");
        // A version holding a placeholder is not expanded again.
        assert_eq!(render_command("x {version}", 7, "{port}"), "x '{port}'");
    }

    #[test]
    fn free_ports_are_not_handed_out_twice_in_a_row() {
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|p| *p != 0));
        // Outgoing connections cannot take them meanwhile.
        if let Some(range) = below_ephemeral() {
            assert!(ports.iter().all(|p| range.contains(p)), "{ports:?}");
        }
    }

    #[test]
    fn handles_round_trip_and_refuse_garbage() {
        let h: ProcessHandle = "pid:4242:987654".parse().unwrap();
        assert_eq!(
            h,
            ProcessHandle {
                pid: 4242,
                start_time: 987654
            }
        );
        assert_eq!(h.to_string(), "pid:4242:987654");
        for bad in [
            "",
            "pid:",
            "pid:12",
            "pid:abc:1",
            "pid:12:x",
            "pid:12:1:2",
            "pid:-5:1",
            "pid:0:1",
            "pid:1:1",
            "pid:4294967295:1",
            "3f2a9c1d0e",
        ] {
            assert!(
                matches!(bad.parse::<ProcessHandle>(), Err(Error::BadHandle(s)) if s == bad),
                "{bad}"
            );
        }
    }
}
