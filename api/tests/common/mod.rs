//! The harness: the HTTP API on a free port against a real SQLite file holding the example
//! building.

#![allow(dead_code)] // Each test binary uses its own subset.

use roomer_api::AppState;
use roomer_occupancy::Layout;
use serde_json::Value;
use std::time::Duration;

/// The example building: DPU 283 over Doorway X, from Outside into Space A (id 1).
pub fn example_layout() -> Layout {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/reference-building.toml"
    );
    Layout::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub struct App {
    pub base: String,
    /// Sends the admin token with every request.
    pub http: reqwest::Client,
    pub store: std::sync::Arc<dyn roomer_storage::Store>,
    _dir: tempfile::TempDir,
}

/// Creates a token with `role` and returns it.
pub async fn token(store: &dyn roomer_storage::Store, role: roomer_storage::Role) -> String {
    let (token, hash) = roomer_api::auth::new_token();
    store.create_token(&hash, role, "test").await.unwrap();
    token
}

impl App {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn post_crossing(&self, dpu: &str, fields: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/dpu/{dpu}/", self.base))
            .form(fields)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

/// The status of the answer to `request`, and its problem `code` (empty if none).
pub async fn status_and_code(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or_default();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

pub async fn spawn_app() -> App {
    spawn_app_with(|state| state).await
}

/// [`spawn_app`], with the state changed by `configure` first (the parts that would run
/// beside the API in `roomer serve`).
pub async fn spawn_app_with(configure: impl FnOnce(AppState) -> AppState) -> App {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let store = roomer_storage::connect(&url).await.unwrap();
    store.apply_layout(&example_layout()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let admin = token(store.as_ref(), roomer_storage::Role::Admin).await;
    let state = configure(AppState::new(store.clone(), Duration::from_secs(300)));
    tokio::spawn(roomer_api::serve(listener, state, std::future::pending()));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {admin}").parse().unwrap(),
    );
    App {
        base,
        http: reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap(),
        store,
        _dir: dir,
    }
}

impl App {
    /// Sends `method path` with an optional JSON body; returns the status, the `Link`
    /// header and the body (`Value::Null` when empty).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Option<String>, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let link = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        // Not JSON (a plain-text health check): the text as a JSON string.
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, link, body)
    }
}
