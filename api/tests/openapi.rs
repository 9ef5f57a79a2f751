//! The OpenAPI document is generated from the code; this checks that it, the router and the
//! route table of `docs/api.md` describe the same routes.

mod common;

use common::spawn_app;
use serde_json::Value;
use std::collections::BTreeSet;

/// `METHOD /path` pairs named in the route table of `docs/api.md` (query strings dropped).
fn readme_routes() -> BTreeSet<(String, String)> {
    let reference =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md")).unwrap();
    let section = reference.split("\n## ").next().unwrap();
    let mut routes = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split(" | ").next().unwrap();
        for quoted in cell.split('`').skip(1).step_by(2) {
            let mut words = quoted.split_whitespace();
            if let (Some(method), Some(path)) = (words.next(), words.next()) {
                if ["GET", "POST", "PUT", "DELETE"].contains(&method) {
                    let path = path.split('?').next().unwrap();
                    routes.insert((method.to_owned(), path.to_owned()));
                }
            }
        }
    }
    routes
}

fn spec_routes(spec: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document_and_the_readme() {
    let app = spawn_app().await;
    let (status, _, spec) = app.send("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );

    let documented = spec_routes(&spec);
    let mut in_readme = readme_routes();
    // The document and its page describe the API; they are not part of it.
    in_readme.remove(&("GET".into(), "/openapi.json".into()));
    in_readme.remove(&("GET".into(), "/docs".into()));
    assert_eq!(
        documented, in_readme,
        "OpenAPI paths (left) and the route table of docs/api.md (right) differ"
    );
    assert!(documented.len() >= 25, "{documented:?}");

    // Every documented route is served: none falls through to "no such route" or 405.
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "1");
        let (status, _, body) = app.send(method, &concrete, None).await;
        assert_ne!(status, 405, "{method} {path}");
        if status == 404 {
            assert_ne!(body["detail"], "no such route", "{method} {path}");
        }
    }
    // Every operation says what its errors look like.
    let problem = spec["components"]["schemas"]["Problem"].clone();
    assert!(problem["properties"]["code"].is_object(), "{problem}");
}

#[tokio::test]
async fn the_docs_page_is_served() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/docs", app.base)).await.unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"<a href="/openapi.json">"#), "{html}");
}
