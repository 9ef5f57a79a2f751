//! What the dashboard's overview costs for a building of 1,000 spaces (10 floors of 99
//! rooms, each with a capacity), on SQLite: the time to answer `GET /` (one storage query,
//! the page rendered on the server), beside `GET /api/v1/spaces?limit=1000`, the JSON a
//! client-side dashboard would fetch instead. Median and p99 of 200 requests each, through
//! the router in process (no network), and the bytes sent (the pages are gzipped for a
//! browser that accepts it). Prints figures; asserts nothing about speed.
//!
//! Rerun: `cargo bench -p roomer-api --bench dashboard`

use axum::body::Body;
use axum::http::Request;
use roomer_occupancy::testkit::floors_of_rooms;
use std::time::{Duration, Instant};
use tower::ServiceExt as _;

const REQUESTS: usize = 200;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(router: &axum::Router, path: &str) -> (Duration, Duration, usize) {
    let mut times = Vec::with_capacity(REQUESTS);
    let mut bytes = 0;
    for _ in 0..REQUESTS {
        let request = Request::get(path)
            .header("accept-encoding", "gzip")
            .body(Body::empty())
            .unwrap();
        let started = Instant::now();
        let response = router.clone().oneshot(request).await.unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        times.push(started.elapsed());
        bytes = body.len();
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), bytes)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let store = roomer_storage::connect(&url).await.unwrap();
    store
        .apply_layout(&floors_of_rooms(10, 99, 12))
        .await
        .unwrap();
    let mut state = roomer_api::AppState::new(store, Duration::from_secs(300));
    state.access.public_read = true;
    let router = roomer_api::router(state);
    println!(
        "dashboard overview, 1,001 spaces (Outside and 10 floors of 99 rooms), SQLite, \
         {REQUESTS} requests each:"
    );
    for path in ["/", "/api/v1/spaces?limit=1000"] {
        let (median, p99, bytes) = measure(&router, path).await;
        println!(
            "  GET {path:<28} median {:>6.2} ms   p99 {:>6.2} ms   {:>7} bytes",
            median.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            bytes
        );
    }
}
