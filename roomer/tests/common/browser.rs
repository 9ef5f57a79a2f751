//! A real, headless Chromium driven over WebDriver, for the dashboard's tests.
//! `TEST_CHROMEDRIVER` names the chromedriver binary and `TEST_CHROMIUM` the browser
//! (Debian's `chromium-driver` and `chromium`; `.ci/run` installs both). Each browser gets its
//! own chromedriver on a free port and an empty profile, and screenshots go to
//! `target/screenshots/` for a person to look at.

use super::processes::free_port;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use roomer_storage::testing::eventually;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let driver_binary =
            std::env::var("TEST_CHROMEDRIVER").expect("TEST_CHROMEDRIVER names chromedriver");
        let chromium = std::env::var("TEST_CHROMIUM").expect("TEST_CHROMIUM names chromium");
        let port = free_port();
        let driver = Command::new(&driver_binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("TEST_CHROMEDRIVER={driver_binary} cannot start: {e}"));
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                // No sandbox: tests run as root. No background networking: this machine's
                // network is closed, and nothing here should leave it.
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = eventually(
            "chromedriver to start a browser",
            Duration::from_secs(30),
            || {
                let capabilities = capabilities.clone();
                let url = url.clone();
                async move {
                    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                    ClientBuilder::new(connector)
                        .capabilities(capabilities)
                        .connect(&url)
                        .await
                        .ok()
                }
            },
        )
        .await;
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The path (and query) of the page the browser shows.
    pub async fn location(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// Waits until the element `css` reads `expected`, and says how long that took.
    pub async fn wait_for_text(&self, css: &str, expected: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let now = self.text(css).await;
            if now.trim() == expected {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{css} still reads {now:?}, not {expected:?}, after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Presses the Tab key, as a person moving through a page with the keyboard.
    pub async fn press_tab(&self) {
        use fantoccini::actions::{InputSource as _, KeyAction, KeyActions};
        let tab: char = fantoccini::key::Key::Tab.into();
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab });
        self.client.perform_actions(keys).await.unwrap();
    }

    /// Runs a script in the page and returns what it returns.
    pub async fn script(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Saves what the browser shows as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn close(mut self) {
        let client = self.client.clone();
        client.close().await.unwrap();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test still leaves no chromedriver (and so no Chromium) behind.
        let _ = self.driver.kill();
    }
}
