#![allow(dead_code)] // each test binary uses a different part of the shared helpers
//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them). Each test gets its own chromedriver on a
//! port the OS chose, in its own process group, which is killed with every browser it
//! started when the guard drops — also when the test fails.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

pub struct ChromeDriver {
    child: Child,
    pub url: String,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    pub fn start() -> ChromeDriver {
        use std::os::unix::process::CommandExt as _;
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // "ChromeDriver was started successfully on port 35769."
        let port = loop {
            let line = lines
                .next()
                .expect("chromedriver said which port it listens on")
                .unwrap();
            if let Some(rest) = line.split("successfully on port ").nth(1) {
                break rest.trim_end_matches('.').trim().parse::<u16>().unwrap();
            }
        };
        // Read on, so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ChromeDriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile: tempfile::tempdir().unwrap(),
        }
    }

    /// A new browser session, headless, at desktop size.
    pub async fn browser(&self) -> Client {
        let profile = tempfile::tempdir_in(self.profile.path()).unwrap().keep();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                    "--disable-gpu", "--window-size=1280,900", "--hide-scrollbars",
                    // A window not in front keeps running its script at full speed.
                    "--disable-background-timer-throttling",
                    "--disable-backgrounding-occluded-windows",
                    "--disable-renderer-backgrounding",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("chromedriver starts a headless chromium")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Runs `scenario` with a browser, and closes the browser whatever happens, before the
/// panic of a failed step (if any) goes on.
pub async fn with_browser<F, Fut>(driver: &ChromeDriver, scenario: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_util::FutureExt as _;
    let browser = driver.browser().await;
    let outcome = std::panic::AssertUnwindSafe(scenario(browser.clone()))
        .catch_unwind()
        .await;
    let _ = browser.close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Polls the text of the first element `css` finds until `check` holds it; panics with
/// the page's source after the deadline.
pub async fn wait_for_text(b: &Client, css: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + crate::util::DEADLINE;
    loop {
        if let Ok(el) = b.find(Locator::Css(css)).await
            && let Ok(text) = el.text().await
            && check(&text)
        {
            return text;
        }
        if tokio::time::Instant::now() > deadline {
            let source = b.source().await.unwrap_or_default();
            panic!("timed out waiting on the text of {css}; the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Where screenshots go: `target/console-screenshots/`, kept as test artifacts.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.parent()?.to_path_buf()))
        .expect("test binary lives in target/<profile>/deps");
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub async fn screenshot(b: &Client, name: &str) -> PathBuf {
    let png = b.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap();
    path
}

/// Signs in through the form, as a person types a token.
pub async fn sign_in(b: &Client, base: &str, token: &str) {
    b.goto(&format!("{base}/login")).await.unwrap();
    b.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    b.find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(b, "header .who", |t| !t.is_empty()).await;
}
