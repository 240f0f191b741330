//! The process driver against real processes (Linux /proc, /bin/sh).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up: a failed step fails the test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use slipway_drivers::{Driver, InstanceSpec, ProcessDriver, ProcessHandle, Started, Workload};

const DEADLINE: Duration = Duration::from_secs(10);

/// Stops the instance's whole process group when the test ends, also on failure.
struct Guard(String);

impl Drop for Guard {
    fn drop(&mut self) {
        let handle = self.0.clone();
        // `Drop` cannot await, and the test's runtime cannot be blocked on from inside.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(ProcessDriver::new().stop(&handle, Duration::ZERO))
        })
        .join();
    }
}

fn spec(dir: &Path, command: &str) -> InstanceSpec {
    InstanceSpec {
        instance_id: "web-staging-v1-1".into(),
        scope: dir.display().to_string(),
        app: "web".into(),
        environment: "staging".into(),
        version: "v1".into(),
        env: BTreeMap::from([("GREETING".into(), "hello there".into())]),
        workload: Workload::Process {
            command: command.into(),
            log_path: dir.join("logs/web.log"),
            workdir: dir.join("work"),
        },
    }
}

async fn start(driver: &ProcessDriver, spec: &InstanceSpec) -> (Started, Guard) {
    let started = driver.start(spec).await.unwrap();
    let guard = Guard(started.handle.clone());
    (started, guard)
}

/// Polls `cond` until it holds; panics after `DEADLINE`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Alive = exists and is not a zombie (pid 1 in a container may never reap orphans).
fn alive(pid: u32) -> bool {
    let stat = read(&PathBuf::from(format!("/proc/{pid}/stat")));
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X')),
        None => false,
    }
}

#[tokio::test]
async fn start_fills_placeholders_sets_env_and_appends_output_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        r#"echo "port={port} version={version} PORT=$PORT app=$SLIPWAY_APP env=$SLIPWAY_ENV ver=$SLIPWAY_VERSION id=$SLIPWAY_INSTANCE greeting=$GREETING pwd=$(pwd)"; echo oops >&2; exec sleep 30"#,
    );
    let log_path = dir.path().join("logs/web.log");
    std::fs::create_dir_all(log_path.parent().unwrap()).unwrap();
    std::fs::write(&log_path, "earlier run\n").unwrap();

    let driver = ProcessDriver::new();
    let (started, _guard) = start(&driver, &spec).await;
    eventually("the log", || read(&log_path).contains("oops")).await;

    let port = started.addr.port();
    assert_eq!(started.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(
        read(&log_path),
        format!(
            "earlier run\nport={port} version=v1 PORT={port} app=web env=staging ver=v1 id=web-staging-v1-1 greeting=hello there pwd={}\noops\n",
            dir.path().join("work").display()
        )
    );
    assert_eq!(
        started.handle,
        ProcessHandle::of_pid(started.pid).unwrap().to_string()
    );
    assert!(driver.is_running(&started.handle).await);
}

/// The names in a process's initial environment.
fn environ_names(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter_map(|var| {
            let var = String::from_utf8_lossy(var);
            var.split_once('=').map(|(k, _)| k.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn an_instance_gets_a_built_environment_not_the_servers() {
    // Set for this test process by cargo: it stands for whatever the server runs with.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "exec sleep 30");
    let driver = ProcessDriver::new();
    let (started, _guard) = start(&driver, &spec).await;
    eventually("sleep to run", || {
        environ_names(started.pid).contains(&"SLIPWAY_INSTANCE".to_owned())
    })
    .await;
    let mut names = environ_names(started.pid);
    // `sh` adds PWD (and may add SHLVL, `_`) before it execs.
    names.retain(|n| !["PWD", "SHLVL", "_", "OLDPWD"].contains(&n.as_str()));
    let mut allowed: Vec<&str> = vec![
        "GREETING",
        "PORT",
        "SLIPWAY_APP",
        "SLIPWAY_ENV",
        "SLIPWAY_INSTANCE",
        "SLIPWAY_SCOPE",
        "SLIPWAY_VERSION",
    ];
    allowed.extend(
        slipway_drivers::INHERITED
            .iter()
            .filter(|n| std::env::var_os(n).is_some()),
    );
    allowed.sort_unstable();
    names.sort_unstable();
    assert_eq!(names, allowed);
}

#[tokio::test]
async fn instance_logs_are_private_to_the_servers_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "echo hello");
    let driver = ProcessDriver::new();
    let (_started, _guard) = start(&driver, &spec).await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let log_path = dir.path().join("logs/web.log");
    assert_eq!(mode(&log_path), 0o600);
    assert_eq!(mode(log_path.parent().unwrap()), 0o700);
}

#[tokio::test]
async fn started_server_is_reachable_at_its_address_until_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        "exec python3 -m http.server {port} --bind 127.0.0.1",
    );
    let driver = ProcessDriver::new();
    let (started, _guard) = start(&driver, &spec).await;
    eventually("the server to listen", || {
        std::net::TcpStream::connect(started.addr).is_ok()
    })
    .await;

    driver
        .stop(&started.handle, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!driver.is_running(&started.handle).await);
    assert!(std::net::TcpStream::connect(started.addr).is_err());
}

#[tokio::test]
async fn stop_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let child_pid_file = dir.path().join("child.pid");
    let spec = spec(
        dir.path(),
        &format!("sleep 300 & echo $! > {}; wait", child_pid_file.display()),
    );
    let driver = ProcessDriver::new();
    let (started, _guard) = start(&driver, &spec).await;
    eventually("the child's pid", || read(&child_pid_file).ends_with('\n')).await;
    let child: u32 = read(&child_pid_file).trim().parse().unwrap();
    assert!(alive(child));

    let begun = Instant::now();
    driver
        .stop(&started.handle, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(
        begun.elapsed() < Duration::from_secs(5),
        "SIGTERM was enough"
    );
    assert!(!alive(child), "the shell's child died with it");
    assert!(!alive(started.pid));
    assert!(!driver.is_running(&started.handle).await);
}

#[tokio::test]
async fn stop_sends_sigkill_when_grace_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    // An ignored signal stays ignored across exec, so `sleep` shrugs off SIGTERM.
    let spec = spec(dir.path(), "trap '' TERM; exec sleep 300");
    let driver = ProcessDriver::new();
    let (started, _guard) = start(&driver, &spec).await;
    // Until the shell has set the trap, SIGTERM would still end it.
    let cmdline = PathBuf::from(format!("/proc/{}/cmdline", started.pid));
    eventually("the trap to be set", || read(&cmdline).starts_with("sleep")).await;

    let grace = Duration::from_millis(300);
    let begun = Instant::now();
    driver.stop(&started.handle, grace).await.unwrap();
    assert!(begun.elapsed() >= grace);
    assert!(!alive(started.pid));
}

#[tokio::test]
async fn made_up_and_malformed_handles() {
    let driver = ProcessDriver::new();
    assert!(!driver.is_running("pid:999999999:1").await);
    driver
        .stop("pid:999999999:1", Duration::ZERO)
        .await
        .unwrap();
    for bad in ["", "pid:", "pid:x:1", "pid:1:1", "pid:0:1", "c0ffee"] {
        assert!(!driver.is_running(bad).await, "{bad}");
        let err = driver.stop(bad, Duration::ZERO).await.unwrap_err();
        assert!(err.to_string().contains("bad instance handle"), "{err}");
    }
}

#[tokio::test]
async fn a_reused_pid_is_neither_running_nor_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new();
    let (started, _guard) = start(&driver, &spec(dir.path(), "exec sleep 30")).await;
    let real = ProcessHandle::of_pid(started.pid).unwrap();
    let stale = ProcessHandle {
        start_time: real.start_time - 1,
        ..real
    }
    .to_string();

    assert!(!driver.is_running(&stale).await);
    driver.stop(&stale, Duration::ZERO).await.unwrap();
    assert!(
        alive(started.pid),
        "a stale handle must not kill the new owner of the pid"
    );
    assert!(driver.is_running(&started.handle).await);
}

#[tokio::test]
async fn an_exited_instance_is_not_running_and_stopping_it_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "echo bye");
    let driver = ProcessDriver::new();
    let (started, _guard) = start(&driver, &spec).await;
    eventually("the instance to exit", || !alive(started.pid)).await;

    assert!(!driver.is_running(&started.handle).await);
    driver.stop(&started.handle, Duration::ZERO).await.unwrap();
    assert_eq!(read(&dir.path().join("logs/web.log")), "bye\n");
}

#[tokio::test]
async fn an_instance_outlives_its_driver_and_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), "exec sleep 30");
    // Start it on a runtime that then shuts down, dropping the driver, its reaper task
    // and the tokio `Child`: what happens to the server's side when it exits.
    let started = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(ProcessDriver::new().start(&spec)).unwrap()
    })
    .join()
    .unwrap();
    let _guard = Guard(started.handle.clone());

    assert!(alive(started.pid));
    assert!(ProcessDriver::new().is_running(&started.handle).await);
}

#[tokio::test]
async fn adopts_an_instance_it_did_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The shell exits at once, so the marked `sleep` is nobody's child here: the
    // situation after a server restart. `setsid` makes it lead its own group.
    let status = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "setsid sleep 30 </dev/null >/dev/null 2>&1 & echo $! > {}",
            pid_file.display()
        ))
        .env("SLIPWAY_INSTANCE", "web-staging-v0-1")
        .status()
        .unwrap();
    assert!(status.success());
    let pid: u32 = read(&pid_file).trim().parse().unwrap();
    eventually("setsid to exec sleep", || {
        read(&PathBuf::from(format!("/proc/{pid}/cmdline"))).starts_with("sleep")
    })
    .await;
    let handle = ProcessHandle::of_pid(pid).unwrap().to_string();
    let _guard = Guard(handle.clone());

    let driver = ProcessDriver::new();
    assert!(driver.is_running(&handle).await);
    driver.stop(&handle, Duration::from_secs(5)).await.unwrap();
    assert!(!alive(pid));
    assert!(!driver.is_running(&handle).await);
}

#[tokio::test]
async fn a_process_without_the_instance_marker_is_not_an_instance() {
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .env_remove("SLIPWAY_INSTANCE")
        .spawn()
        .unwrap();
    // Right after spawn the kernel may still be filling in the new environment.
    let environ = PathBuf::from(format!("/proc/{}/environ", child.id()));
    eventually("the environment", || !read(&environ).is_empty()).await;
    let handle = ProcessHandle::of_pid(child.id()).unwrap().to_string();
    let running = ProcessDriver::new().is_running(&handle).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(!running);
}

#[tokio::test]
async fn instances_lists_what_runs_for_a_scope_even_unrecorded() {
    let dir = tempfile::tempdir().unwrap();
    let driver = ProcessDriver::new();
    let spec = spec(dir.path(), "exec sleep 30");
    let (started, _guard) = start(&driver, &spec).await;
    let scope = dir.path().display().to_string();
    let expected = vec![("web-staging-v1-1".to_string(), started.handle.clone())];
    // For an instant after the spawn the shell is replacing itself (`exec`), and the kernel
    // shows an empty environment: poll rather than read once.
    let start_polling = Instant::now();
    while driver.instances(&scope).await != expected {
        assert!(
            start_polling.elapsed() < DEADLINE,
            "{:?}",
            driver.instances(&scope).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(driver.instances("/some/other/server").await.is_empty());
    driver
        .stop(&started.handle, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(driver.instances(&scope).await.is_empty());
}

#[tokio::test]
async fn a_container_workload_is_refused_without_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), "true");
    spec.workload = Workload::Container {
        image: "registry.example.com/web".into(),
        port: 8080,
        labels: BTreeMap::from([("slipway.app".into(), "web".into())]),
        pull: slipway_drivers::PullPolicy::Never,
        memory: None,
        cpus: None,
        restart: slipway_drivers::Restart::No,
        args: Vec::new(),
    };
    let driver = ProcessDriver::new();
    let err = driver.start(&spec).await.unwrap_err();
    assert!(
        matches!(err, slipway_drivers::Error::WrongWorkload("container")),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "this driver cannot run a container workload"
    );
    assert!(driver.instances(&spec.scope).await.is_empty());
}
