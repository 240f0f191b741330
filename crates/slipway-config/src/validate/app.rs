//! Apps: driver, run, image, port, container options, health check, smoke tests, hooks.

use super::{Checker, Fields, Item};
use crate::model::*;
use crate::tree::{Node, describe, quote, scalar_text};

const APP_KEYS: &[&str] = &[
    "driver", "run", "image", "port", "pull", "memory", "cpus", "restart", "args", "health",
    "smoke", "hooks", "migrate",
];
/// Keys only a docker app has.
const DOCKER_KEYS: &[&str] = &["image", "pull", "memory", "cpus", "restart", "args"];
const PULLS: &[&str] = &["never", "if-missing", "always"];
/// Docker refuses a memory limit below 6 MiB.
const MIN_MEMORY: u64 = 6 << 20;
const HEALTH_KEYS: &[&str] = &[
    "path",
    "interval",
    "timeout",
    "healthy_threshold",
    "unhealthy_threshold",
    "start_period",
];
const SMOKE_KEYS: &[&str] = &["get", "expect_status", "expect_body_contains"];
const HOOK_KEYS: &[&str] = &["pre_deploy", "post_deploy", "pre_rollback"];
const HOOK_FORM_KEYS: &[&str] = &["run", "timeout"];
const DRIVERS: &[&str] = &["process", "docker"];

impl<'a> Checker<'a> {
    pub(super) fn app(&mut self, item: &Item<'a>) -> App {
        let f = self.fields(item, APP_KEYS);
        let driver = match f.get("driver") {
            None => Some(DriverKind::Process),
            Some(i) => match self.choice(&i, "driver", DRIVERS) {
                Some("docker") => Some(DriverKind::Docker),
                Some(_) => Some(DriverKind::Process),
                None => None,
            },
        };
        let run = f.get("run").and_then(|i| self.nonempty_string(&i));
        let image = f.get("image").and_then(|i| self.image(&i));
        let port = f
            .get("port")
            .and_then(|i| self.uint(&i, 1, u16::MAX.into()))
            .and_then(|p| u16::try_from(p).ok());
        self.driver_needs(&f, driver);
        let container = self.container(&f);
        let health = match f.get("health") {
            Some(i) => self.health(&i),
            None => HealthCheck::default(),
        };
        let smoke = match f.get("smoke") {
            Some(i) => self
                .list(&i, "smoke tests")
                .iter()
                .filter_map(|t| self.smoke(t))
                .collect(),
            None => Vec::new(),
        };
        let hooks = match f.get("hooks") {
            Some(i) => self.hooks(&i),
            None => Hooks::default(),
        };
        let migrate = f.get("migrate").and_then(|i| self.migrate(&i));
        App {
            driver: driver.unwrap_or(DriverKind::Process),
            run,
            image,
            port,
            container,
            health,
            smoke,
            hooks,
            migrate,
        }
    }

    /// The keys the chosen driver cannot do without.
    fn driver_needs(&mut self, f: &Fields, driver: Option<DriverKind>) {
        match driver {
            Some(DriverKind::Process) if f.get("run").is_none() => self.missing(
                f,
                "run",
                "the command that starts one instance",
                Some(
                    "the process driver needs `run`, like `run: \"my-app --port {port}\"`"
                        .to_owned(),
                ),
            ),
            Some(DriverKind::Docker) => {
                if f.get("image").is_none() {
                    self.missing(
                        f,
                        "image",
                        "the image repository, like registry.example.com/acme/web",
                        Some(
                            "the docker driver needs `image`; the release version is its tag"
                                .to_owned(),
                        ),
                    );
                }
                if f.get("port").is_none() {
                    self.missing(
                        f,
                        "port",
                        "the port the service listens on inside the container",
                        Some("the docker driver needs `port`, like `port: 8080`".to_owned()),
                    );
                }
            }
            Some(DriverKind::Process) => {
                for key in DOCKER_KEYS {
                    if let Some(item) = f.get(key) {
                        let d = self
                            .diag(
                                item.pos,
                                &item.path,
                                format!("`{key}` is a key of docker apps"),
                            )
                            .with_hint(Some(
                                "add `driver: docker`, or remove it: the process driver runs `run`"
                                    .to_owned(),
                            ));
                        self.push(d);
                    }
                }
            }
            None => {}
        }
    }

    /// `pull`, `memory`, `cpus`, `restart`, `args`.
    fn container(&mut self, f: &Fields<'a>) -> ContainerOptions {
        let pull = match f
            .get("pull")
            .and_then(|i| self.choice(&i, "pull policy", PULLS))
        {
            Some("never") => Pull::Never,
            Some("always") => Pull::Always,
            _ => Pull::IfMissing,
        };
        let restart = f
            .get("restart")
            .and_then(|i| self.restart(&i))
            .unwrap_or_default();
        let args = match f.get("args") {
            Some(i) => self
                .list(&i, "arguments")
                .iter()
                .filter_map(|a| self.string(a))
                .collect(),
            None => Vec::new(),
        };
        ContainerOptions {
            pull,
            memory: f.get("memory").and_then(|i| self.memory(&i)),
            cpus: f.get("cpus").and_then(|i| self.cpus(&i)),
            restart,
            args,
        }
    }

    /// `512m`, `1g`, `65536k` or bytes: at least Docker's minimum.
    fn memory(&mut self, item: &Item) -> Option<u64> {
        const EXPECTED: &str = "a size like 512m or 1g (b, k, m, g), at least 6m";
        let text = match &item.node.value {
            Node::Str(_) | Node::Int(_) => scalar_text(self.source, item.node).unwrap_or_default(),
            _ => {
                self.wrong_type(item, "a memory size", Some(EXPECTED), None);
                return None;
            }
        };
        let lower = text.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(lower.len());
        let (digits, unit) = lower.split_at(split);
        let shift = match unit {
            "" | "b" => Some(0),
            "k" | "kb" => Some(10),
            "m" | "mb" => Some(20),
            "g" | "gb" => Some(30),
            _ => None,
        };
        let bytes = digits
            .parse::<u64>()
            .ok()
            .zip(shift)
            .and_then(|(n, shift)| n.checked_mul(1 << shift));
        match bytes {
            Some(b) if b >= MIN_MEMORY => Some(b),
            _ => {
                let d = self
                    .diag(
                        item.pos,
                        &item.path,
                        format!("bad memory limit {}", quote(&text)),
                    )
                    .with_expected(EXPECTED);
                self.push(d);
                None
            }
        }
    }

    /// A positive number of cores, like `0.5` or `2`.
    fn cpus(&mut self, item: &Item) -> Option<f64> {
        const EXPECTED: &str = "a number of CPU cores above 0, like 0.5 or 2";
        let value = match &item.node.value {
            Node::Str(_) | Node::Int(_) | Node::Float(_) => {
                scalar_text(self.source, item.node).and_then(|t| t.trim().parse::<f64>().ok())
            }
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && v > 0.0 && v <= 1024.0 => Some(v),
            _ => {
                let message = format!("bad CPU limit {}", describe(self.source, item.node));
                let d = self
                    .diag(item.pos, &item.path, message)
                    .with_expected(EXPECTED);
                self.push(d);
                None
            }
        }
    }

    fn hooks(&mut self, item: &Item<'a>) -> Hooks {
        let h = self.fields(item, HOOK_KEYS);
        let mut hook = |key: &str| h.get(key).and_then(|i| self.hook(&i));
        Hooks {
            pre_deploy: hook("pre_deploy"),
            post_deploy: hook("post_deploy"),
            pre_rollback: hook("pre_rollback"),
        }
    }

    /// `"cmd"`, or `{ run: "cmd", timeout: 30s }`.
    fn hook(&mut self, item: &Item<'a>) -> Option<Hook> {
        if !matches!(item.node.value, Node::Map(_)) {
            return self.nonempty_string(item).map(Hook::new);
        }
        let f = self.fields(item, HOOK_FORM_KEYS);
        let timeout = match f.get("timeout") {
            Some(i) => self.positive_duration(&i),
            None => Some(DEFAULT_HOOK_TIMEOUT),
        };
        let Some(run) = f.get("run") else {
            self.missing(
                &f,
                "run",
                "the shell command of the hook",
                Some("write `{ run: \"./migrate.sh\", timeout: 30s }`".to_owned()),
            );
            return None;
        };
        let run = self.nonempty_string(&run)?;
        Some(Hook {
            run,
            timeout: timeout?,
        })
    }

    fn image(&mut self, item: &Item) -> Option<String> {
        let image = self.nonempty_string(item)?;
        // The release version becomes the tag, so the repository must not carry one.
        // (A `:` before the last `/` is a registry port, which is fine.)
        let last = image.rsplit('/').next().unwrap_or(&image);
        if let Some((repo, _)) = last.split_once([':', '@']) {
            let fixed = format!("{}{repo}", &image[..image.len() - last.len()]);
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("image {} has a tag or digest", quote(&image)),
                )
                .with_expected("an image repository without a tag")
                .with_hint(Some(format!(
                    "the release version is the tag; write `{fixed}`"
                )));
            self.push(d);
            return None;
        }
        Some(image)
    }

    fn url_path(&mut self, item: &Item) -> Option<String> {
        let path = self.nonempty_string(item)?;
        if !path.starts_with('/') {
            let d = self
                .diag(
                    item.pos,
                    &item.path,
                    format!("expected a path starting with `/`, got {}", quote(&path)),
                )
                .with_hint(Some(format!("write `/{path}`")));
            self.push(d);
            return None;
        }
        Some(path)
    }

    fn health(&mut self, item: &Item<'a>) -> HealthCheck {
        let f = self.fields(item, HEALTH_KEYS);
        let d = HealthCheck::default();
        HealthCheck {
            path: f
                .get("path")
                .and_then(|i| self.url_path(&i))
                .unwrap_or(d.path),
            interval: f
                .get("interval")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.interval),
            timeout: f
                .get("timeout")
                .and_then(|i| self.positive_duration(&i))
                .unwrap_or(d.timeout),
            healthy_threshold: f
                .get("healthy_threshold")
                .and_then(|i| self.u32(&i, 1))
                .unwrap_or(d.healthy_threshold),
            unhealthy_threshold: f
                .get("unhealthy_threshold")
                .and_then(|i| self.u32(&i, 1))
                .unwrap_or(d.unhealthy_threshold),
            start_period: f
                .get("start_period")
                .and_then(|i| self.duration(&i))
                .unwrap_or(d.start_period),
        }
    }

    fn smoke(&mut self, item: &Item<'a>) -> Option<SmokeTest> {
        let f = self.fields(item, SMOKE_KEYS);
        let expect_status = f
            .get("expect_status")
            .and_then(|i| self.uint(&i, 100, 599))
            .and_then(|s| u16::try_from(s).ok());
        let expect_body_contains = f.get("expect_body_contains").and_then(|i| self.string(&i));
        let Some(get) = f.get("get") else {
            self.missing(&f, "get", "the path to request, like /health", None);
            return None;
        };
        let get = self.url_path(&get)?;
        // Documented default: a smoke test with no expectation wants a 200.
        let expect_status = match (expect_status, &expect_body_contains) {
            (None, None) => Some(200),
            (status, _) => status,
        };
        Some(SmokeTest {
            get,
            expect_status,
            expect_body_contains,
        })
    }
}
