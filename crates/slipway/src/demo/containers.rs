//! The demo's container story, told when a Docker daemon answers: app `shop` runs the
//! demo images (`slipway-demo:v1`, FROM scratch, built by `bench/docker-images.sh`, the
//! script the tests use) through staging into production by its image digest, and a
//! container removed behind slipway's back is replaced. With no daemon, or no images to
//! build, the demo says so in one line and tells the rest of its story.

use std::path::Path;
use std::time::Duration;

use slipway_api::{InstanceState, InstanceView, LogSource, Status};
use slipway_drivers::DockerDriver;

use super::{PRODUCTION, STAGING, Story};
use crate::error::{Error, Result};

pub(super) const APP: &str = "shop";

/// How long the daemon has to answer a ping before the demo goes on without it.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the demo waits for the engine to replace the removed container.
const REPLACE_DEADLINE: Duration = Duration::from_secs(30);

/// Whether the demo runs containers.
pub(super) enum Docker {
    Ready(DockerDriver),
    /// The line that says why not.
    Skipped(String),
}

/// Asks the daemon (`DOCKER_HOST`, else the default socket) and builds the demo images.
pub(super) async fn prepare() -> Docker {
    let driver = match DockerDriver::from_env() {
        Ok(driver) => driver,
        Err(e) => return Docker::Skipped(skipped(&e.to_string())),
    };
    match answers(&driver).await {
        Ok(()) => {}
        Err(why) => return Docker::Skipped(skipped(&why)),
    }
    match build_images().await {
        Ok(()) => Docker::Ready(driver),
        Err(why) => Docker::Skipped(skipped(&why)),
    }
}

fn skipped(why: &str) -> String {
    format!("containers: skipped, {why}")
}

async fn answers(driver: &DockerDriver) -> Result<(), String> {
    let unanswered = || format!("no Docker daemon answers at {}", driver.host());
    match tokio::time::timeout(PING_TIMEOUT, driver.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(unanswered()),
    }
}

/// Runs `bench/docker-images.sh` of the source tree this binary was built from: the one
/// way the demo images are made (static demo app, FROM scratch), shared with the tests.
async fn build_images() -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/docker-images.sh");
    if !script.is_file() {
        return Err(format!(
            "its images are built by bench/docker-images.sh of a slipway source tree, and there is none at {}",
            script.display()
        ));
    }
    errln!("building the demo images FROM scratch (bench/docker-images.sh)…");
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
    Err(format!("bench/docker-images.sh failed: {last}"))
}

/// The `apps:` entry of the docker app.
pub(super) fn app_yaml() -> String {
    format!(
        r#"  {APP}:
    driver: docker
    image: slipway-demo
    port: 8080
    pull: never
    memory: 64m
    health: {{ path: /health, interval: 250ms, timeout: 1s, start_period: 5s }}
    smoke:
      - {{ get: /, expect_body_contains: "ok release=" }}
"#
    )
}

impl Story {
    pub(super) async fn containers(&self, driver: &DockerDriver) -> Result<()> {
        self.chapter(&format!(
            "containers: the Docker daemon at {} answers; app {APP} runs the image slipway-demo, built FROM scratch from the static demo app",
            driver.host()
        ));
        self.chapter(&format!(
            "bob deploys {APP} v1 to staging: slipway resolves the tag to its image digest and runs the container by it"
        ));
        let staged = self
            .deploy_app_and_expect(APP, "v1", STAGING, Status::Success)
            .await?;
        let digest = self.admin.deployment(staged).await?.data.digest;
        let digest = digest.unwrap_or_default();
        let answer = self.answer(STAGING).await?;
        self.say(&format!(
            "staging runs container slipway-{APP}-staging-v1-1 from {}; its router answers {APP}: {answer}",
            short(&digest)
        ));

        self.chapter(&format!(
            "bob deploys {APP} v1 to production; alice approves"
        ));
        let id = self.deploy_app_and_expect_approval(APP, "v1").await?;
        let last = self.approve_and_follow(id).await?;
        super::expect(&last, Status::Success)?;
        if last.digest.as_deref() != Some(digest.as_str()) {
            return Err(super::unexpected(&last, "the digest staging ran"));
        }
        self.say(&format!(
            "production runs the digest that succeeded in staging ({}), whatever the tag points at now",
            short(&digest)
        ));

        self.chapter("someone removes production's container behind slipway's back (docker rm -f)");
        self.replaced_after_removal(driver, id).await
    }

    /// Removes production's container as `docker rm -f` would, and waits until the
    /// engine has replaced it and the router answers from the new one.
    async fn replaced_after_removal(&self, driver: &DockerDriver, id: i64) -> Result<()> {
        let Some(old) = self.production_instance(None).await? else {
            return Err(Error::Failed(format!(
                "{APP} runs no container in production"
            )));
        };
        driver
            .remove(&old.handle)
            .await
            .map_err(|e| Error::Failed(format!("cannot remove {}: {e}", old.id)))?;
        let deadline = tokio::time::Instant::now() + REPLACE_DEADLINE;
        let new = loop {
            if let Some(new) = self.production_instance(Some(&old.handle)).await?
                && self.answer(PRODUCTION).await.is_ok()
            {
                break new;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Failed(format!(
                    "{} was not replaced within {}s",
                    old.id,
                    REPLACE_DEADLINE.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let logs = self.admin.logs(id, None).await?.data;
        if let Some(gone) = logs
            .iter()
            .find(|l| l.source == LogSource::Engine && l.message.contains("is gone"))
        {
            self.say(&format!("deployment {id}'s log: {}", gone.message));
        }
        self.say(&format!(
            "the engine started {} again on {} (was {}); production's router follows: {}",
            new.id,
            new.addr,
            old.addr,
            self.answer(PRODUCTION).await?
        ));
        Ok(())
    }

    /// A running instance of `shop` in production, other than `not` when given.
    async fn production_instance(&self, not: Option<&str>) -> Result<Option<InstanceView>> {
        let status = self.admin.status(Some(APP), Some(PRODUCTION)).await?.data;
        Ok(status
            .environments
            .into_iter()
            .flat_map(|e| e.instances)
            .find(|i| i.state == InstanceState::Running && Some(i.handle.as_str()) != not))
    }

    /// What `env`'s router answers for app `shop`.
    async fn answer(&self, env: &str) -> Result<String> {
        let addr = self.routers.of(env);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Failed(e.to_string()))?;
        let fail = |why: String| Error::Failed(format!("{env}'s router for {APP}: {why}"));
        let resp = http
            .get(format!("http://{addr}/"))
            .header("X-Slipway-App", APP)
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(fail(format!("HTTP {}: {}", status.as_u16(), body.trim())));
        }
        Ok(body.trim().to_owned())
    }
}

/// `sha256:e2dc7bafec36…`: enough of a digest to tell it.
fn short(digest: &str) -> String {
    match digest.get(..19) {
        Some(head) if digest.len() > 19 => format!("{head}…"),
        _ => digest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_daemon_that_does_not_answer_is_named_in_one_line() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = DockerDriver::new(format!("tcp://127.0.0.1:{port}").parse().unwrap());
        let why = answers(&driver).await.unwrap_err();
        assert_eq!(
            skipped(&why),
            format!("containers: skipped, no Docker daemon answers at tcp://127.0.0.1:{port}")
        );
    }

    #[test]
    fn the_docker_app_is_valid_beside_the_demo_app() {
        let yaml = format!(
            "version: 1\napps:\n{}environments:\n  staging:\n    listen: 127.0.0.1:0\n",
            app_yaml()
        );
        let config = slipway_config::parse(&yaml, "slipway.yaml", Path::new("/tmp")).unwrap();
        assert_eq!(config.apps[APP].image.as_deref(), Some("slipway-demo"));
        assert_eq!(short("sha256:e2dc7bafec365c5bd8f9"), "sha256:e2dc7bafec36…");
        assert_eq!(short("sha256:e2"), "sha256:e2");
    }
}
