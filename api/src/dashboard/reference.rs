//! `/docs`: the API reference, rendered on the server from the same OpenAPI document that
//! `/openapi.json` serves (so it cannot drift from the routes), with no viewer loaded from
//! another site. Rendered once, when the router is built.

use super::{frame, respond, Section};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup, PreEscaped};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// The reference page for `spec`, ready to serve.
pub fn page(spec: &utoipa::openapi::OpenApi, sign_out: bool) -> Arc<String> {
    let document = serde_json::to_value(spec).unwrap_or(Value::Null);
    Arc::new(render(&document, sign_out).into_string())
}

/// Serves a page rendered by [`page`].
pub fn serve(rendered: &str) -> Response {
    respond(StatusCode::OK, PreEscaped(rendered.to_owned()))
}

/// One operation: where it is, and what the document says of it.
struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    body: &'a Value,
}

fn render(document: &Value, sign_out: bool) -> Markup {
    let tags: Vec<(&str, &str)> = document["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| {
                    (
                        t["name"].as_str().unwrap_or(""),
                        t["description"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut by_tag: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(body) = item.get(method) {
                    let tag = body["tags"][0].as_str().unwrap_or("other");
                    by_tag
                        .entry(tag)
                        .or_default()
                        .push(Operation { method, path, body });
                }
            }
        }
    }
    let body = html! {
        h1 { "API" }
        p {
            (document["info"]["description"].as_str().unwrap_or(""))
            " The machine-readable document is " a href="/openapi.json" { "/openapi.json" } " (OpenAPI "
            (document["openapi"].as_str().unwrap_or("3")) ")."
        }
        p.muted { "Reads need a bearer token (" code { "Authorization: Bearer roomer_…" } ") unless the server runs with public reads; writes need an admin token. Errors are RFC 9457 problem details." }
        nav aria-label="Sections" {
            ul.inline-list {
                @for (name, _) in &tags {
                    @if by_tag.contains_key(name) { li { a href={ "#tag-" (name) } { (name) } } }
                }
            }
        }
        @for (name, description) in &tags {
            @if let Some(operations) = by_tag.get(name) {
                section.tag #{ "tag-" (name) } {
                    h2 { (name) }
                    p.muted { (description) }
                    @for operation in operations { (render_operation(operation)) }
                }
            }
        }
    };
    frame("API", Section::Api, sign_out, body)
}

fn render_operation(operation: &Operation) -> Markup {
    let body = operation.body;
    let parameters = body["parameters"].as_array().cloned().unwrap_or_default();
    let responses = body["responses"].as_object().cloned().unwrap_or_default();
    html! {
        article.operation {
            h3 {
                span.method { (operation.method.to_uppercase()) } " "
                code { (operation.path) }
            }
            @if let Some(text) = body["description"].as_str().or(body["summary"].as_str()) {
                p { (text) }
            }
            @if !parameters.is_empty() {
                table {
                    thead { tr { th scope="col" { "Parameter" } th scope="col" { "In" } th scope="col" { "Required" } th scope="col" { "Description" } } }
                    tbody {
                        @for p in &parameters {
                            tr {
                                td { code { (p["name"].as_str().unwrap_or("")) } }
                                td { (p["in"].as_str().unwrap_or("")) }
                                td { @if p["required"].as_bool() == Some(true) { "yes" } @else { "no" } }
                                td { (p["description"].as_str().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            @if let Some(content) = body["requestBody"]["content"].as_object() {
                p { "Body: " @for (kind, _) in content { code { (kind) } " " } }
            }
            ul.responses {
                @for (status, response) in &responses {
                    li { strong { (status) } " " (response["description"].as_str().unwrap_or("")) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_document_is_listed() {
        let (_, spec) = crate::routes();
        let html = page(&spec, true);
        let document = serde_json::to_value(&spec).unwrap();
        let mut operations = 0;
        for (path, item) in document["paths"].as_object().unwrap() {
            for method in METHODS {
                if item.get(method).is_some() {
                    operations += 1;
                    let escaped = path.replace('&', "&amp;");
                    assert!(html.contains(&format!("<code>{escaped}</code>")), "{path}");
                }
            }
        }
        assert_eq!(
            html.matches("<article class=\"operation\">").count(),
            operations
        );
        assert!(operations > 20);
    }
}
