//! Apps: driver, run, image, port, health check, smoke tests, hooks.

use super::{Checker, Fields, Item};
use crate::model::*;
use crate::tree::{Node, quote};

const APP_KEYS: &[&str] = &["driver", "run", "image", "port", "health", "smoke", "hooks"];
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
        App {
            driver: driver.unwrap_or(DriverKind::Process),
            run,
            image,
            port,
            health,
            smoke,
            hooks,
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
            _ => {}
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
