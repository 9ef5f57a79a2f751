//! History in local time: day buckets across both of Paris's daylight-saving changes, hourly
//! buckets on a 25-hour day, utilization, CSV, pagination and refusals.

mod common;

use common::{spawn_app, App};
use serde_json::{json, Value};

async fn paris_room_with_crossings(app: &App, crossings: &[(&str, &str)]) {
    let (status, _, body) = app
        .send(
            "PUT",
            "/api/v1/spaces/1",
            Some(json!({"name": "Space A", "time_zone": "Europe/Paris", "capacity": 10})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (ts, direction) in crossings {
        let (status, body) = app
            .post_crossing("283", &[("timestamp", ts), ("direction", direction)])
            .await;
        assert_eq!(status, 201, "{body}");
    }
}

fn summary(history: &Value) -> Vec<(String, String, i64, i64, i64, u64, u64)> {
    history["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_owned(),
                b["end"].as_str().unwrap().to_owned(),
                b["count"].as_i64().unwrap(),
                b["min"].as_i64().unwrap(),
                b["max"].as_i64().unwrap(),
                b["entrances"].as_u64().unwrap(),
                b["exits"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn days_follow_local_midnight_across_the_spring_change() {
    let app = spawn_app().await;
    paris_room_with_crossings(
        &app,
        &[
            ("2026-03-28T22:30:00Z", "1"), // 23:30 on the 28th in Paris
            ("2026-03-29T10:00:00Z", "1"),
            ("2026-03-29T11:00:00Z", "-1"),
            ("2026-03-30T08:00:00Z", "1"),
        ],
    )
    .await;
    let (status, _, history) = app
        .send(
            "GET",
            "/api/v1/spaces/1/counts?start_time=2026-03-28&end_time=2026-03-31&interval=1d",
            None,
        )
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["time_zone"], "Europe/Paris", "the space's own zone");
    let s = |x: &str| x.to_owned();
    assert_eq!(
        summary(&history),
        [
            (
                s("2026-03-28T00:00:00+01:00"),
                s("2026-03-29T00:00:00+01:00"),
                1,
                0,
                1,
                1,
                0
            ),
            (
                s("2026-03-29T00:00:00+01:00"),
                s("2026-03-30T00:00:00+02:00"),
                1,
                1,
                2,
                1,
                1
            ),
            (
                s("2026-03-30T00:00:00+02:00"),
                s("2026-03-31T00:00:00+02:00"),
                2,
                1,
                2,
                1,
                0
            ),
        ]
    );
    let utilization: Vec<f64> = history["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["utilization"].as_f64().unwrap())
        .collect();
    assert_eq!(utilization, [0.1, 0.1, 0.2]);
    let (_, _, at) = app
        .send(
            "GET",
            "/api/v1/spaces/1/count?at=2026-03-30T12:00:00Z",
            None,
        )
        .await;
    assert_eq!(at["utilization"], 0.2);
    let (_, _, now) = app.send("GET", "/api/v1/spaces/1", None).await;
    assert_eq!(
        (now["count"].as_i64(), now["utilization"].as_f64()),
        (Some(2), Some(0.2))
    );

    // The same day in UTC is a different cut.
    let (_, _, in_utc) = app
        .send(
            "GET",
            "/api/v1/spaces/1/counts?start_time=2026-03-28&end_time=2026-03-29&interval=1d&time_zone=UTC",
            None,
        )
        .await;
    assert_eq!(in_utc["buckets"][0]["entrances"], 1);
    assert_eq!(in_utc["buckets"][0]["start"], "2026-03-28T00:00:00Z");
}

#[tokio::test]
async fn the_autumn_day_has_25_hourly_buckets_and_pages_through_them() {
    let app = spawn_app().await;
    paris_room_with_crossings(&app, &[("2026-10-25T01:30:00Z", "1")]).await;
    let url = "/api/v1/spaces/1/counts?start_time=2026-10-25&end_time=2026-10-26&interval=1h";
    let (_, _, day) = app.send("GET", url, None).await;
    let buckets = day["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 25);
    // 02:00 local happens twice: first in summer time, then in winter time.
    assert_eq!(buckets[2]["start"], "2026-10-25T02:00:00+02:00");
    assert_eq!(buckets[3]["start"], "2026-10-25T02:00:00+01:00");
    assert_eq!(buckets[3]["entrances"], 1, "01:30 UTC is the second 02:30");
    assert!(day.get("next").is_none());

    // Ten buckets a page: three pages, the same 25 buckets.
    let mut pages = 0;
    let mut seen = Vec::new();
    let mut next = Some(format!("{url}&limit=10"));
    while let Some(path) = next {
        let (status, link, page) = app.send("GET", &path, None).await;
        assert_eq!(status, 200, "{path}: {page}");
        pages += 1;
        seen.extend(page["buckets"].as_array().unwrap().iter().cloned());
        next = page["next"].as_str().map(str::to_owned);
        assert_eq!(link.is_some(), next.is_some());
    }
    assert_eq!((pages, seen.len()), (3, 25));
    assert_eq!(&seen, buckets);
}

#[tokio::test]
async fn csv_exports_the_same_rows() {
    let app = spawn_app().await;
    paris_room_with_crossings(&app, &[("2026-03-29T10:00:00Z", "1")]).await;
    let url = "/api/v1/spaces/1/counts?start_time=2026-03-29&end_time=2026-03-30&interval=1d";
    let response = app
        .http
        .get(format!("{}{url}&format=csv", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    assert_eq!(
        text,
        "start,end,count,min,max,entrances,exits,utilization\n\
         2026-03-29T00:00:00+01:00,2026-03-30T00:00:00+02:00,1,0,1,1,0,0.1\n"
    );
}

#[tokio::test]
async fn bad_history_requests_are_refused_clearly() {
    let app = spawn_app().await;
    for (query, status) in [
        (
            "/api/v1/spaces/1/counts?start_time=2026-01-02&end_time=2026-01-01",
            400,
        ),
        (
            "/api/v1/spaces/1/counts?start_time=2026-01-01&end_time=2026-01-02&interval=2h",
            400,
        ),
        (
            "/api/v1/spaces/1/counts?start_time=2026-01-01&end_time=2026-01-02&time_zone=Mars/Base",
            400,
        ),
        ("/api/v1/spaces/1/counts?start_time=soon", 400),
        ("/api/v1/spaces/1/counts?end_time=2026-01-02", 400),
        (
            "/api/v1/spaces/1/counts?start_time=2026-01-01&format=xml",
            400,
        ),
        ("/api/v1/spaces/1/counts?start_time=2026-01-01&limit=0", 400),
        ("/api/v1/spaces/42/counts?start_time=2026-01-01", 404),
    ] {
        let (got, _, body) = app.send("GET", query, None).await;
        assert_eq!(got, status, "{query}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{body}"
        );
    }
}

async fn count_at(app: &App, at: &str) -> i64 {
    let (status, _, body) = app
        .send("GET", &format!("/api/v1/spaces/1/count?at={at}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["count"].as_i64().unwrap()
}

#[tokio::test]
async fn a_daily_reset_empties_the_room_in_counts_and_history_and_can_be_moved() {
    let app = spawn_app().await;
    paris_room_with_crossings(
        &app,
        &[
            ("2026-03-28T20:00:00Z", "1"),
            ("2026-03-28T21:00:00Z", "1"),
            ("2026-03-29T10:00:00Z", "1"),
        ],
    )
    .await;
    let set_reset = |at: Option<&str>| {
        let mut body = json!({"name": "Space A", "time_zone": "Europe/Paris", "capacity": 10});
        if let Some(at) = at {
            body["daily_reset"] = at.into();
        }
        body
    };
    assert_eq!(
        count_at(&app, "2026-03-29T10:00:00Z").await,
        3,
        "no reset yet"
    );
    assert_eq!(
        current_counts(&app).await,
        [3, 3, 3],
        "now, without a reset"
    );

    // 04:00 in Paris on the spring-forward day is 02:00 UTC.
    let (status, _, _) = app
        .send("PUT", "/api/v1/spaces/1", Some(set_reset(Some("04:00"))))
        .await;
    assert_eq!(status, 200);
    assert_eq!(count_at(&app, "2026-03-29T01:59:59Z").await, 2);
    assert_eq!(count_at(&app, "2026-03-29T02:00:00Z").await, 0, "reset");
    assert_eq!(
        count_at(&app, "2026-03-29T10:00:00Z").await,
        1,
        "recounted after it"
    );

    // A reset boundary inside a history range.
    let (_, _, hours) = app
        .send(
            "GET",
            "/api/v1/spaces/1/counts?start_time=2026-03-29T03:00:00%2B02:00&end_time=2026-03-29T05:00:00%2B02:00&interval=1h",
            None,
        )
        .await;
    assert_eq!(summary_of(&hours), [(2, 2, 2), (0, 0, 0)], "{hours}");
    let (_, _, days) = app
        .send(
            "GET",
            "/api/v1/spaces/1/counts?start_time=2026-03-28&end_time=2026-03-30&interval=1d",
            None,
        )
        .await;
    assert_eq!(summary_of(&days), [(2, 0, 2), (1, 0, 2)]);
    // Months later, every reset since the last crossing has emptied the room.
    assert_eq!(current_counts(&app).await, [0, 0, 0], "now, after resets");

    // Moving the reset to 05:00 changes history consistently; removing it undoes it.
    app.send("PUT", "/api/v1/spaces/1", Some(set_reset(Some("05:00"))))
        .await;
    assert_eq!(count_at(&app, "2026-03-29T02:30:00Z").await, 2);
    assert_eq!(count_at(&app, "2026-03-29T03:00:00Z").await, 0);
    assert_eq!(count_at(&app, "2026-03-29T10:00:00Z").await, 1);
    assert_eq!(
        hours_and_days(&app).await,
        (
            vec![(2, 2, 2), (2, 2, 2), (0, 0, 0)],
            vec![(2, 0, 2), (1, 0, 2)]
        )
    );

    app.send("PUT", "/api/v1/spaces/1", Some(set_reset(None)))
        .await;
    assert_eq!(count_at(&app, "2026-03-29T10:00:00Z").await, 3);
    assert_eq!(
        hours_and_days(&app).await,
        (
            vec![(2, 2, 2), (2, 2, 2), (2, 2, 2)],
            vec![(2, 0, 2), (3, 2, 3)]
        )
    );
    assert_eq!(
        current_counts(&app).await,
        [3, 3, 3],
        "now, without a reset again"
    );
}

/// Space A's (count, min, max) in the hours from 03:00 to 06:00 in Paris on the
/// spring-forward day, and in the days of 28 and 29 March.
async fn hours_and_days(app: &App) -> (Vec<(i64, i64, i64)>, Vec<(i64, i64, i64)>) {
    let hours = history(
        app,
        "2026-03-29T03:00:00%2B02:00",
        "2026-03-29T06:00:00%2B02:00",
        "1h",
    )
    .await;
    let days = history(app, "2026-03-28", "2026-03-30", "1d").await;
    (summary_of(&hours), summary_of(&days))
}

/// Space A's history from `start` to `end` in `interval` buckets.
async fn history(app: &App, start: &str, end: &str, interval: &str) -> Value {
    let (status, _, body) = app
        .send(
            "GET",
            &format!(
                "/api/v1/spaces/1/counts?start_time={start}&end_time={end}&interval={interval}"
            ),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Space A's current count as each route that gives it says: the space, the list of spaces,
/// and the proof of concept's count route.
async fn current_counts(app: &App) -> [i64; 3] {
    let (_, _, space) = app.send("GET", "/api/v1/spaces/1", None).await;
    let (_, _, list) = app.send("GET", "/api/v1/spaces", None).await;
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == 1)
        .unwrap()["count"]
        .clone();
    let (_, _, legacy) = app.send("GET", "/space/1/count/", None).await;
    [
        space["count"].as_i64().unwrap(),
        listed.as_i64().unwrap(),
        legacy["count"].as_i64().unwrap(),
    ]
}

fn summary_of(history: &Value) -> Vec<(i64, i64, i64)> {
    history["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["count"].as_i64().unwrap(),
                b["min"].as_i64().unwrap(),
                b["max"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn minute_and_week_buckets_follow_the_local_clock() {
    let app = spawn_app().await;
    paris_room_with_crossings(
        &app,
        &[
            ("2026-03-28T20:00:00Z", "1"),
            ("2026-03-28T21:00:30Z", "1"),
            ("2026-03-28T21:06:00Z", "-1"),
        ],
    )
    .await;
    let starts_and_moves = |history: &Value| -> Vec<(String, i64, u64, u64)> {
        summary(history)
            .into_iter()
            .map(|(start, _, count, _, _, entrances, exits)| (start, count, entrances, exits))
            .collect()
    };

    let minutes = history(&app, "2026-03-28T20:59:00Z", "2026-03-28T21:01:00Z", "1m").await;
    assert_eq!(
        starts_and_moves(&minutes),
        [
            ("2026-03-28T21:59:00+01:00".to_owned(), 1, 0, 0),
            ("2026-03-28T22:00:00+01:00".to_owned(), 2, 1, 0),
        ]
    );
    let five = history(&app, "2026-03-28T21:00:00Z", "2026-03-28T21:15:00Z", "5m").await;
    assert_eq!(
        starts_and_moves(&five),
        [
            ("2026-03-28T22:00:00+01:00".to_owned(), 2, 1, 0),
            ("2026-03-28T22:05:00+01:00".to_owned(), 1, 0, 1),
            ("2026-03-28T22:10:00+01:00".to_owned(), 1, 0, 0),
        ]
    );
    // Weeks start on Monday at local midnight; the second one starts in summer time.
    let weeks = history(&app, "2026-03-23", "2026-04-06", "1w").await;
    assert_eq!(
        starts_and_moves(&weeks),
        [
            ("2026-03-23T00:00:00+01:00".to_owned(), 1, 2, 1),
            ("2026-03-30T00:00:00+02:00".to_owned(), 1, 0, 0),
        ]
    );
}

/// Dates far from now are ordinary instants: history before 1677 or after 2262 (beyond
/// nanosecond timestamps) answers buckets, as any other stretch does.
#[tokio::test]
async fn history_far_from_now_is_answered_not_a_panic() {
    let app = spawn_app().await;
    paris_room_with_crossings(&app, &[("2026-03-28T22:30:00Z", "1")]).await;
    for query in [
        "/api/v1/spaces/1/counts?start_time=1600-01-01&interval=1h&limit=3",
        "/api/v1/spaces/1/counts?start_time=2300-01-01&end_time=2300-01-03&interval=1d",
        "/api/v1/spaces/1/counts?start_time=0001-01-01&end_time=0001-01-02&interval=1h",
        "/api/v1/spaces/1/counts?start_time=9999-12-30&end_time=9999-12-31&interval=1w",
    ] {
        let (status, _, body) = app.send("GET", query, None).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(!body["buckets"].as_array().unwrap().is_empty(), "{query}");
    }
    let (status, _, later) = app
        .send(
            "GET",
            "/api/v1/spaces/1/counts?start_time=2300-01-01&end_time=2300-01-02&interval=1d",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(later["buckets"][0]["count"], 1, "{later}");
}
