//! Helpers shared by the integration tests: a temp dir with a config, the real binary with a
//! clean environment, and a `slipway server` process that is killed when the test ends.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_slipway");

/// `slipway` with no SLIPWAY_* variables from the developer's shell, run in `dir` so a
/// `slipway.yaml` elsewhere is never picked up.
pub fn slipway(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("SLIPWAY_SERVER")
        .env_remove("SLIPWAY_TOKEN")
        .env_remove("SLIPWAY_ROUTER_TOKEN")
        .stdin(Stdio::null());
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run slipway")
}

/// Runs `cmd`, killing it if it has not ended `within`: a follow that never stops fails
/// the test instead of hanging it.
pub fn run_for(cmd: &mut Command, within: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run slipway");
    let ended = wait_until(within, || child.try_wait().is_ok_and(|s| s.is_some()));
    if !ended {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("collect slipway's output");
    assert!(
        ended,
        "still running after {within:?}; stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config with one process app and two environments. The app's command fails at once,
/// so a deployment in these tests ends `failure` without leaving a process behind.
pub fn write_config(dir: &Path, api_port: u16) -> PathBuf {
    let path = dir.join("slipway.yaml");
    let yaml = format!(
        "version: 1
server:
  listen: 127.0.0.1:{api_port}
  data_dir: data
apps:
  web:
    driver: process
    run: \"echo this test app never starts; exit 3\"
    health: {{ interval: 100ms, start_period: 1s, unhealthy_threshold: 1 }}
environments:
  staging:
    listen: 127.0.0.1:{staging}
    strategy: blue-green
  production:
    listen: 127.0.0.1:{production}
    requires: [staging]
    protection:
      reviewers: [alice]
      required_approvals: 1
users:
  alice: {{ role: approver }}
",
        staging = free_port(),
        production = free_port(),
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The demo app next to the binary under test, built on demand.
pub fn demo_app() -> PathBuf {
    let bin = Path::new(BIN).with_file_name("slipway-demo-app");
    if !bin.exists() {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-p", "slipway-demo-app"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cargo build -p slipway-demo-app failed");
    }
    bin
}

/// One `GET /` through a router on `port` as the user `key`, over HTTP/1.0 so the
/// connection closes after the answer: its status code, or None when nothing answered.
pub fn get(port: u16, key: &str, headers: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET / HTTP/1.0\r\nHost: web\r\nX-Slipway-Key: {key}\r\n{headers}\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Polls `check` until it holds or `within` has passed.
pub fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Processes whose standard output is a file under `dir`: how app instances started by a
/// server whose data dir is in `dir` can be found, whoever started them.
pub fn processes_under(dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/fd/1"))
                .is_ok_and(|target| target.starts_with(dir))
        })
        .collect()
}

/// Kills, on drop, every process still writing under `dir` (see [`processes_under`]), so a
/// failed test leaves no app instance behind.
pub struct Sweep(pub PathBuf);

impl Drop for Sweep {
    fn drop(&mut self) {
        for pid in processes_under(&self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// One HTTP/1.0 GET on a new connection: (status, body), or None when the connection failed.
pub fn get_body(port: u16) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Some((status, body))
}

/// A child process killed and reaped on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `slipway router --control 127.0.0.1:<control>` with `token`, its output in
/// `router.log`, once its control API accepts connections.
pub fn standalone_router(dir: &Path, control: u16, token: &str) -> Proc {
    let log = std::fs::File::create(dir.join("router.log")).unwrap();
    let router = Proc(
        slipway(dir)
            .args(["router", "--control", &format!("127.0.0.1:{control}")])
            .env("SLIPWAY_ROUTER_TOKEN", token)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", control)).is_ok()
        }),
        "the standalone router did not start"
    );
    router
}

/// Steady `GET /` through a router on `port` from `threads` threads until finished (or
/// two minutes passed), counting 200s and everything else.
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(port: u16, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (answered, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let threads = (0..threads)
            .map(|_| {
                let (stop, answered, failed) = (stop.clone(), answered.clone(), failed.clone());
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(120);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        match get_body(port) {
                            Some((200, _)) => answered.fetch_add(1, Ordering::Relaxed),
                            other => {
                                eprintln!("failed request: {other:?}");
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        Load {
            stop,
            answered,
            failed,
            threads,
        }
    }

    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits until `more` requests beyond those answered so far are answered.
    pub fn answers(&self, more: u64) -> bool {
        let now = self.answered();
        wait_until(Duration::from_secs(10), || self.answered() >= now + more)
    }

    /// Stops the load; returns (answered, failed).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for t in std::mem::take(&mut self.threads) {
            t.join().unwrap();
        }
        (self.answered(), self.failed.load(Ordering::Relaxed))
    }
}

/// A `slipway server` process, killed (and reaped) on drop, also when a test fails.
pub struct Server {
    child: Child,
    pub url: String,
    pub dir: PathBuf,
}

impl Server {
    /// Starts a server on [`write_config`]'s config and waits until its admin token exists
    /// and its API answers.
    pub fn start(dir: &Path) -> Server {
        let api_port = free_port();
        write_config(dir, api_port);
        Server::spawn(dir, api_port, &[])
    }

    /// Like [`Server::start`], on the config `yaml(api_port)` (written to `slipway.yaml`).
    pub fn start_with(dir: &Path, yaml: impl FnOnce(u16) -> String) -> Server {
        Server::start_with_env(dir, yaml, &[])
    }

    /// Like [`Server::start_with`], with `env` set on the server process (and only there).
    pub fn start_with_env(
        dir: &Path,
        yaml: impl FnOnce(u16) -> String,
        env: &[(&str, &str)],
    ) -> Server {
        let api_port = free_port();
        std::fs::write(dir.join("slipway.yaml"), yaml(api_port)).unwrap();
        Server::spawn(dir, api_port, env)
    }

    fn spawn(dir: &Path, api_port: u16, env: &[(&str, &str)]) -> Server {
        let child = slipway(dir)
            .args(["server", "--config", "slipway.yaml"])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
            .spawn()
            .expect("start slipway server");
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{api_port}"),
            dir: dir.to_path_buf(),
        };
        let token = dir.join("data").join("admin.token");
        let ready = wait_until(Duration::from_secs(30), || {
            token.is_file() && std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, api_port)).is_ok()
        });
        if !ready {
            let _ = server.child.kill();
            panic!(
                "server did not start; its log:\n{}",
                std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
            );
        }
        server
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new server on the same directory and config (after [`Server::kill`]).
    pub fn start_again(&self) -> Server {
        let port = self
            .url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("the server's URL has its port");
        Server::spawn(&self.dir, port, &[])
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.join("data").join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `slipway` pointed at this server with the admin token.
    pub fn cli(&self) -> Command {
        let mut cmd = slipway(&self.dir);
        cmd.env("SLIPWAY_SERVER", &self.url)
            .env("SLIPWAY_TOKEN", self.admin_token());
        cmd
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
