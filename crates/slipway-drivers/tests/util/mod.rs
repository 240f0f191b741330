//! Shared by the docker driver tests: the demo images, a guard that removes every
//! container a test made, and small probes through the docker CLI (independent of the
//! code under test).
#![allow(dead_code)]

mod images;

pub use images::{docker, images, remove_containers};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use slipway_drivers::{ContainerSpec, PullPolicy, Restart};

pub const DEADLINE: Duration = Duration::from_secs(20);

/// `docker inspect` of one object.
pub fn inspect(id: &str) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(&docker(&["inspect", id])).unwrap();
    json[0].clone()
}

/// One test's own scope: a unique scope label and app name. Dropping it removes every
/// container it made (by the ids it recorded, and by its scope label for any the code
/// under test made without returning them) and the tags it added, also when the test fails.
pub struct Scope {
    pub scope: String,
    pub app: String,
    ids: Mutex<Vec<String>>,
    tags: Mutex<Vec<String>>,
}

impl Scope {
    pub fn new() -> Scope {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let unique = format!("{}x{n}", std::process::id());
        images();
        Scope {
            scope: format!("slipway-test-{unique}"),
            app: format!("t{unique}"),
            ids: Mutex::new(Vec::new()),
            tags: Mutex::new(Vec::new()),
        }
    }

    /// A spec for `slipway-demo:<version>` in this scope.
    pub fn spec(&self, version: &str) -> ContainerSpec {
        ContainerSpec {
            instance_id: format!("{}-staging-{version}-1", self.app),
            scope: self.scope.clone(),
            app: self.app.clone(),
            environment: "staging".into(),
            version: version.into(),
            deployment: "42".into(),
            ordinal: 1,
            image: "slipway-demo".into(),
            port: 8080,
            env: BTreeMap::new(),
            pull: PullPolicy::Never,
            memory: None,
            cpus: None,
            restart: Restart::No,
            args: vec![],
        }
    }

    /// Records a handle (`docker:<id>`) for removal.
    pub fn track(&self, handle: &str) {
        let id = handle.strip_prefix("docker:").unwrap_or(handle);
        self.ids.lock().unwrap().push(id.to_owned());
    }

    /// Tags `source` as `target` until the test ends.
    pub fn tag(&self, source: &str, target: &str) {
        docker(&["tag", source, target]);
        self.untag_later(target);
    }

    /// Removes the tag `target` (made elsewhere) when the test ends.
    pub fn untag_later(&self, target: &str) {
        self.tags.lock().unwrap().push(target.to_owned());
    }

    /// Ids of every container, running or not, labelled with this scope.
    pub fn containers(&self) -> BTreeSet<String> {
        docker(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=slipway.scope={}", self.scope),
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let ids: Vec<String> = self.ids.lock().unwrap().drain(..).collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
        remove_containers(&format!("label=slipway.scope={}", self.scope));
        for tag in self.tags.lock().unwrap().drain(..) {
            // Untags only: the image stays under its other tags.
            let _ = Command::new("docker").args(["rmi", &tag]).output();
        }
    }
}

/// One GET on a fresh connection; `None` while nothing answers HTTP there (Docker's
/// proxy accepts on the published port before the app inside listens).
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Polls `probe` until it returns `Some`; panics after `DEADLINE`.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `GET /` at `addr` answers 200 and returns its body.
pub async fn serving(addr: SocketAddr) -> String {
    eventually(&format!("the app on {addr}"), async || {
        get(addr, "/").filter(|(s, _)| *s == 200).map(|(_, b)| b)
    })
    .await
}
