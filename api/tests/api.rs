//! The HTTP API against a real server on a free port and a real SQLite file.

mod common;

use common::{spawn_app, App};
use serde_json::{json, Value};

#[tokio::test]
async fn a_space_is_empty_before_any_data() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/space/1/count/").await,
        (200, json!({"space_id": 1, "count": 0}))
    );
    assert_eq!(
        app.get("/space/1/count/?timestamp=1984-01-01").await,
        (200, json!({"space_id": 1, "count": 0}))
    );
}

#[tokio::test]
async fn posted_crossings_are_counted_at_their_own_time() {
    let app = spawn_app().await;
    for (ts, direction) in [
        ("2018-02-26T16:06:02.903Z", "1"),
        ("2018-02-26T16:08:02Z", "1"),
        ("2018-02-26T17:00:00Z", "-1"),
    ] {
        let (status, body) = app
            .post_crossing("283", &[("timestamp", ts), ("direction", direction)])
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["counted"], true);
    }
    assert_eq!(app.get("/space/1/count/").await.1["count"], 1);
    assert_eq!(
        app.get("/space/1/count/?timestamp=2018-02-26T16:10:00Z")
            .await
            .1["count"],
        2
    );
    assert_eq!(
        app.get("/space/1/count/?timestamp=2018-02-26").await.1["count"],
        0
    );
    assert_eq!(
        app.get("/space/1/count/?timestamp=2100-01-01").await.1["count"],
        1,
        "the future is now"
    );
    assert_eq!(
        app.get("/api/v1/spaces/1/count?at=2018-02-26T17:09:00%2B01:00")
            .await,
        (
            200,
            json!({"space_id": 1, "count": 2, "at": "2018-02-26T16:09:00Z"})
        )
    );
    assert_eq!(
        app.get("/api/v1/spaces").await.1,
        json!([
            {"id": 0, "name": "Outside", "count": -1},
            {"id": 1, "name": "Space A", "count": 1},
            {"id": 2, "name": "Space B", "count": 0}
        ])
    );
}

#[tokio::test]
async fn a_repeat_is_a_conflict_and_counts_once() {
    let app = spawn_app().await;
    let fields = [
        ("timestamp", "2018-02-26T16:06:02.903Z"),
        ("direction", "1"),
    ];
    assert_eq!(app.post_crossing("283", &fields).await.0, 201);
    let (status, body) = app.post_crossing("283", &fields).await;
    assert_eq!(status, 409);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already reported"),
        "{body}"
    );
    assert_eq!(app.get("/space/1/count/").await.1["count"], 1);
}

/// A leap second over HTTP is the first second of the next minute: its repeat, and that
/// next second, are repeats (409), not a server error.
#[tokio::test]
async fn a_leap_second_and_its_next_second_are_one_crossing() {
    let app = spawn_app().await;
    let leap = [("timestamp", "2018-02-26T23:59:60Z"), ("direction", "1")];
    let next = [("timestamp", "2018-02-27T00:00:00Z"), ("direction", "1")];
    assert_eq!(app.post_crossing("283", &leap).await.0, 201);
    assert_eq!(app.post_crossing("283", &leap).await.0, 409);
    assert_eq!(app.post_crossing("283", &next).await.0, 409);
    assert_eq!(app.get("/space/1/count/").await.1["count"], 1);
}

#[tokio::test]
async fn bad_input_is_refused_with_a_reason_and_kept() {
    let app = spawn_app().await;
    let cases: [&[(&str, &str)]; 4] = [
        &[("timestamp", "2018-02-26T16:06:02Z"), ("direction", "2")],
        &[("timestamp", "noon"), ("direction", "1")],
        &[("direction", "1")],
        &[("timestamp", "2999-01-01T00:00:00Z"), ("direction", "1")],
    ];
    for fields in cases {
        let (status, body) = app.post_crossing("283", fields).await;
        assert_eq!(status, 400, "{fields:?}");
        assert!(body["detail"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let (status, rejected) = app.get("/api/v1/rejected").await;
    assert_eq!(status, 200);
    let mut reasons: Vec<&str> = rejected
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bad_direction",
            "bad_timestamp",
            "future_timestamp",
            "missing_field"
        ]
    );
    assert_eq!(
        app.get("/api/v1/totals").await.1,
        json!({"crossings": 0, "pending": 0, "rejected": 4})
    );
}

#[tokio::test]
async fn unknown_ids_and_bad_timestamps_are_clear_errors() {
    let app = spawn_app().await;
    let (status, body) = app.get("/space/42/count/").await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (404, "space 42 does not exist")
    );
    assert_eq!(app.get("/space/abc/count/").await.0, 404);
    assert_eq!(app.get("/api/v1/spaces/42/count").await.0, 404);
    assert_eq!(app.get("/no/such/route").await.0, 404);
    let (status, body) = app.get("/space/1/count/?timestamp=tomorrow").await;
    assert_eq!(status, 400);
    assert!(body["detail"].as_str().unwrap().contains("RFC 3339"));
}

#[tokio::test]
async fn crossings_of_an_unknown_dpu_are_accepted_and_wait() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_crossing(
            "999",
            &[("timestamp", "2018-02-26T16:06:02Z"), ("direction", "1")],
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["counted"], false);
    assert_eq!(app.get("/api/v1/totals").await.1["pending"], 1);
}

#[tokio::test]
async fn dpus_show_their_doorway_and_todays_crossings() {
    let app = spawn_app().await;
    let now = chrono::Utc::now().to_rfc3339();
    assert_eq!(
        app.post_crossing("283", &[("timestamp", &now), ("direction", "1")])
            .await
            .0,
        201
    );
    let (status, dpus) = app.get("/api/v1/dpus").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = dpus
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["283", "423"]);
    let (status, dpu) = app.get("/api/v1/dpus/283").await;
    assert_eq!(status, 200);
    assert_eq!(dpu["declared"], true);
    assert_eq!(dpu["doorway"], 1);
    assert_eq!(dpu["events_today"], 1);
    assert_eq!(dpu["online"], Value::Null, "it never published a status");
    // A crossing over HTTP is a sighting, as one over MQTT is.
    let last_seen: chrono::DateTime<chrono::Utc> = dpu["last_seen"]
        .as_str()
        .expect("heard from")
        .parse()
        .unwrap();
    assert!((chrono::Utc::now() - last_seen).num_seconds() < 60, "{dpu}");
    let (_, silent) = app.get("/api/v1/dpus/423").await;
    assert_eq!(silent["last_seen"], Value::Null, "423 sent nothing");
    assert_eq!(app.get("/api/v1/dpus/999").await.0, 404);
    assert_eq!(app.get("/api/v1/dpus/bad%20id").await.0, 404);
}

impl App {
    async fn put_installations(&self, dpu: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .put(format!("{}/api/v1/dpus/{dpu}/installations", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn count_at(&self, space: i64, at: &str) -> i64 {
        let (status, body) = self
            .get(&format!("/api/v1/spaces/{space}/count?at={at}"))
            .await;
        assert_eq!(status, 200, "{body}");
        body["count"].as_i64().unwrap()
    }
}

#[tokio::test]
async fn registering_and_correcting_a_dpus_installations_recounts_its_crossings() {
    let app = spawn_app().await;
    // DPU 999 is unknown: three arrivals wait.
    for minute in ["16:01", "16:02", "16:07"] {
        let (status, _) = app
            .post_crossing(
                "999",
                &[
                    ("timestamp", &format!("2018-02-26T{minute}:00Z")),
                    ("direction", "1"),
                ],
            )
            .await;
        assert_eq!(status, 201);
    }
    assert_eq!(app.count_at(1, "2018-02-26T17:00:00Z").await, 0);

    // Registered over Doorway X (Outside → A): all three count in A.
    let (status, body) = app
        .put_installations("999", r#"[{"doorway": 1, "from": "2018-01-01T00:00:00Z"}]"#)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reattributed"], 3);
    assert_eq!(app.count_at(1, "2018-02-26T17:00:00Z").await, 3);

    // Corrected: from 16:05 it hung over Doorway Z (B → A); B was empty.
    let corrected = r#"[{"doorway": 2, "from": "2018-02-26T16:05:00Z"},
                        {"doorway": 1, "from": "2018-01-01T00:00:00Z",
                         "until": "2018-02-26T16:05:00Z"}]"#;
    let (status, body) = app.put_installations("999", corrected).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reattributed"], 1);
    assert_eq!(body["installations"][0]["doorway"], 1, "stored sorted");
    assert_eq!(app.count_at(1, "2018-02-26T17:00:00Z").await, 3);
    assert_eq!(app.count_at(0, "2018-02-26T17:00:00Z").await, -2);
    let (_, dpu) = app.get("/api/v1/dpus/999").await;
    assert_eq!(dpu["doorway"], 2);

    // The same history again changes nothing.
    let (_, body) = app.put_installations("999", corrected).await;
    assert_eq!(
        (body["changed"].as_u64(), body["reattributed"].as_u64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn invalid_installation_histories_are_refused_with_a_reason() {
    let app = spawn_app().await;
    let cases = [
        (
            r#"[{"doorway": 42, "from": "2018-01-01T00:00:00Z"}]"#,
            422,
            "doorway 42",
        ),
        (
            r#"[{"doorway": 1, "from": "2018-01-01T00:00:00Z"},
                {"doorway": 2, "from": "2018-02-01T00:00:00Z"}]"#,
            422,
            "overlapping",
        ),
        (
            r#"[{"doorway": 1, "from": "2018-02-01T00:00:00Z", "until": "2018-01-01T00:00:00Z"}]"#,
            422,
            "ends",
        ),
        (r#"{"doorway": 1}"#, 400, "JSON array"),
        ("not json", 400, "JSON array"),
    ];
    for (body, expected, reason) in cases {
        let (status, answer) = app.put_installations("283", body).await;
        assert_eq!(status, expected, "{body}: {answer}");
        let error = answer["detail"].as_str().unwrap();
        assert!(error.contains(reason), "{body}: {error}");
    }
    // Nothing changed: DPU 283 still hangs over Doorway X.
    let (_, dpu) = app.get("/api/v1/dpus/283").await;
    assert_eq!(dpu["doorway"], 1);
}

#[tokio::test]
async fn every_error_is_rfc9457_problem_details() {
    let app = spawn_app().await;
    let cases = [
        ("GET", "/space/42/count/", 404, "not_found"),
        ("GET", "/no/such/route", 404, "not_found"),
        ("DELETE", "/api/v1/totals", 405, "method_not_allowed"),
        // axum's own rejection of a query string that does not parse.
        ("GET", "/api/v1/rejected?limit=many", 400, "bad_request"),
        (
            "GET",
            "/space/1/count/?timestamp=tomorrow",
            400,
            "bad_request",
        ),
        // This API process was started without a broker to follow.
        ("GET", "/api/v1/live", 503, "unavailable"),
    ];
    for (method, path, status, code) in cases {
        let response = app
            .http
            .request(method.parse().unwrap(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        if status == 405 {
            assert!(
                response.headers().contains_key("allow"),
                "405 says what is allowed"
            );
        }
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status, "{method} {path}: {body}");
        assert_eq!(body["code"], code, "{method} {path}: {body}");
        assert!(
            body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn readiness_says_what_this_process_depends_on() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/readyz").await,
        (200, json!({"database": "ok", "broker": "not used"}))
    );
}

#[tokio::test]
async fn readiness_says_when_the_embedded_broker_lost_acknowledged_messages() {
    let app = common::spawn_app_with(|mut state| {
        state.broker_ready = Some(std::sync::Arc::new(|| true));
        state.meters = Some(std::sync::Arc::new(
            || json!({"broker": {"lost_messages": 7, "restarts": 1}}),
        ));
        state
    })
    .await;
    assert_eq!(
        app.get("/readyz").await,
        (
            200,
            json!({"database": "ok", "broker": "ok", "broker_lost_messages": 7})
        )
    );
}

/// A counter's value in `/metrics` (0 when absent).
async fn counter(app: &common::App, name: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn crossings_posted_over_http_are_metered_like_mqtt_ones() {
    let app = spawn_app().await;
    // Other tests in this process post too: only growth is ours to check.
    let (applied, duplicates) = (
        counter(&app, "roomer_crossings_applied_total").await,
        counter(&app, "roomer_duplicates_total").await,
    );
    let crossing = [("timestamp", "2018-02-26T16:06:02Z"), ("direction", "1")];
    assert_eq!(app.post_crossing("283", &crossing).await.0, 201);
    assert_eq!(app.post_crossing("283", &crossing).await.0, 409);
    assert!(counter(&app, "roomer_crossings_applied_total").await >= applied + 1.0);
    assert!(counter(&app, "roomer_duplicates_total").await >= duplicates + 1.0);
}

#[tokio::test]
async fn refused_crossings_are_listed_newest_first_and_filtered_with_their_raw_body() {
    let app = spawn_app().await;
    let post_raw = |dpu: &str, content_type: &str, body: &'static str| {
        app.http
            .post(format!("{}/dpu/{dpu}/", app.base))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    for (dpu, content_type, body) in [
        ("283", form, "timestamp=2018-02-26T16:06:02Z&direction=2"),
        ("284", form, "timestamp=2018-02-26T16:06:02Z&direction=0"),
        ("283", form, "timestamp=noon&direction=1"),
        (
            "283",
            "application/json",
            r#"{"timestamp": "2018-02-26T16:06:02Z"}"#,
        ),
    ] {
        let response = post_raw(dpu, content_type, body).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
    }
    // Refused but kept even though it never parsed: its bytes are not even UTF-8.
    app.store
        .reject(&[roomer_storage::Rejected {
            received_at: chrono::Utc::now(),
            source: "dpus/285/crossings".into(),
            dpu_id: Some("285".into()),
            reason: "not_json".into(),
            detail: "payload is not JSON".into(),
            payload: vec![0xff, 0x00, 0x7b],
        }])
        .await
        .unwrap();

    let app = &app;
    let listed = |query: &'static str| async move {
        let (status, body) = app.get(&format!("/api/v1/rejected{query}")).await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["dpu_id"].as_str().unwrap().to_owned(),
                    r["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let pair = |d: &str, r: &str| (d.to_owned(), r.to_owned());
    assert_eq!(
        listed("").await,
        [
            pair("285", "not_json"),
            pair("283", "not_a_form"),
            pair("283", "bad_timestamp"),
            pair("284", "bad_direction"),
            pair("283", "bad_direction"),
        ],
        "newest first"
    );
    assert_eq!(
        listed("?dpu_id=283").await,
        [
            pair("283", "not_a_form"),
            pair("283", "bad_timestamp"),
            pair("283", "bad_direction")
        ]
    );
    assert_eq!(
        listed("?reason=bad_direction").await,
        [pair("284", "bad_direction"), pair("283", "bad_direction")]
    );
    assert_eq!(
        listed("?dpu_id=284&reason=bad_direction").await,
        [pair("284", "bad_direction")]
    );
    assert_eq!(listed("?limit=2").await.len(), 2);

    let (_, all) = app.get("/api/v1/rejected").await;
    let by_reason = |reason: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|r| r["reason"] == reason)
            .unwrap()
            .clone()
    };
    let not_a_form = by_reason("not_a_form");
    assert_eq!(not_a_form["source"], "http POST /dpu/283/");
    assert_eq!(
        not_a_form["payload"],
        r#"{"timestamp": "2018-02-26T16:06:02Z"}"#
    );
    assert!(not_a_form.get("payload_base64").is_none());
    assert_eq!(
        by_reason("bad_timestamp")["payload"],
        "timestamp=noon&direction=1",
        "the body as sent"
    );
    let binary = by_reason("not_json");
    assert_eq!(binary["payload_base64"], "/wB7");
    assert_eq!(binary["source"], "dpus/285/crossings");
}

#[tokio::test]
async fn a_crossing_posted_for_an_invalid_dpu_id_is_refused_with_that_reason() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_crossing(
            "a%20b",
            &[("timestamp", "2018-02-26T16:06:02Z"), ("direction", "1")],
        )
        .await;
    assert_eq!(status, 400);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("a DPU id is 1 to 64 characters"),
        "{detail}"
    );
    let (_, kept) = app.get("/api/v1/rejected?reason=bad_dpu_id").await;
    assert_eq!(kept[0]["source"], "http POST /dpu/a b/", "{kept}");
    assert_eq!(kept[0]["dpu_id"], Value::Null);
}
