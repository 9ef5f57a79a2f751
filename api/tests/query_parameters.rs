//! No query string can make a route fail on the server's side: generated values for every
//! parameter of every GET route (dates far in the past and future, huge and negative
//! numbers, unicode, empty, garbage) answer 2xx, or 4xx with problem details, never 5xx and
//! never a dropped connection.

mod common;

use common::spawn_app;
use proptest::prelude::*;

/// Every GET route with query parameters (live streams aside: they never end), and its
/// parameters.
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/v1/spaces", &["limit", "after"]),
    ("/api/v1/doorways", &["limit", "after"]),
    ("/api/v1/dpus", &["limit", "after"]),
    ("/api/v1/rejected", &["limit", "dpu_id", "reason"]),
    ("/api/v1/spaces/1/count", &["at"]),
    (
        "/api/v1/spaces/1/counts",
        &[
            "start_time",
            "end_time",
            "interval",
            "time_zone",
            "format",
            "limit",
        ],
    ),
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        // Instants, from year 0 to 99999, in every shape a user might type.
        (
            0i64..100_000,
            1u32..13,
            1u32..32,
            0u32..25,
            0u32..61,
            any::<bool>()
        )
            .prop_map(|(y, mo, d, h, mi, date_only)| if date_only {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:60%2B23:59")
            }),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| format!("{n}0")),
        prop::sample::select(vec![
            "",
            "1h",
            "1m",
            "1w",
            "0h",
            "-1h",
            "9999999999d",
            "1d",
            "csv",
            "json",
            "UTC",
            "Europe/Paris",
            "Mars/Base",
            "%00",
            "..",
            "%E2%82%AC",
            "true",
            "null",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z0-9%._~-]{0,24}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_query_string_fails_on_the_servers_side(
        route in 0..ROUTES.len(),
        values in prop::collection::vec((any::<prop::sample::Index>(), value()), 0..5),
    ) {
        let (path, names) = ROUTES[route];
        let query: Vec<String> = values
            .iter()
            .map(|(name, value)| format!("{}={value}", name.get(names)))
            .collect();
        let url = format!("{path}?{}", query.join("&"));
        let (status, body) = runtime().block_on(async {
            let (status, _, body) = app().await.send("GET", &url, None).await;
            (status, body)
        });
        prop_assert!(status < 500, "{url}: {status} {body}");
        if status >= 400 {
            prop_assert!(body["detail"].is_string(), "{url}: {status} {body}");
        }
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// One API for every case, made on first use.
async fn app() -> &'static common::App {
    static APP: tokio::sync::OnceCell<common::App> = tokio::sync::OnceCell::const_new();
    APP.get_or_init(spawn_app).await
}
