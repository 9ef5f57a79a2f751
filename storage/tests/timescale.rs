//! TimescaleDB (run when `TEST_TIMESCALE_URL` names a server with `timescaledb` preloaded;
//! reported as ignored otherwise, failed if set and unreachable): history folded from the
//! tiered summaries equals history from the raw series on the same data, late crossings into
//! compressed chunks included; settings reach TimescaleDB; raw retention keeps counts and
//! history.

mod reference_building;

use chrono::TimeDelta;
use proptest::prelude::*;
use roomer_occupancy::history::{boundaries, Interval};
use roomer_occupancy::reference;
use roomer_occupancy::testkit::{base_time, scenario_with_resets, Scenario};
use roomer_occupancy::{Crossing, Layout, Space, SpaceId, Timestamp};
use roomer_storage::history::{history, Source};
use roomer_storage::testing::{compress_all_chunks, fresh_timescale_database};
use roomer_storage::{Page, Store, TimescaleSettings};
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;

const DAY: u64 = 86_400;

async fn all_spaces(store: &dyn Store) -> Vec<Space> {
    store
        .spaces(&Page::all())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.space)
        .collect()
}

async fn fresh() -> (Arc<dyn Store>, String) {
    let url = fresh_timescale_database().await;
    let store = roomer_storage::connect(&url)
        .await
        .expect("open TimescaleDB");
    assert!(
        store.timescale().await.unwrap().is_some(),
        "TEST_TIMESCALE_URL names a server without TimescaleDB preloaded"
    );
    (store, url)
}

/// Runs SQL the way an operator (or a TimescaleDB job) would, beside roomer.
async fn sql(url: &str, statement: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
}

/// The scenario's hour stretched to `factor` hours: events, installations and resets then
/// span several days, so that buckets of hours, days and weeks have something to sum.
fn stretch(scenario: &Scenario, factor: i32) -> Scenario {
    let base = base_time();
    let at = |t: Timestamp| base + (t - base) * factor;
    let crossing = |c: &Crossing| Crossing {
        ts: at(c.ts),
        ..c.clone()
    };
    let layout = |l: &Layout| {
        let mut l = l.clone();
        for dpu in &mut l.dpus {
            for i in &mut dpu.installations {
                i.from = at(i.from);
                i.until = i.until.map(at);
            }
        }
        l
    };
    Scenario {
        layout: layout(&scenario.layout),
        interim: scenario.interim.as_ref().map(layout),
        events: scenario.events.iter().map(crossing).collect(),
        batches: scenario
            .batches
            .iter()
            .map(|b| b.iter().map(crossing).collect())
            .collect(),
        layout_before_batch: scenario.layout_before_batch,
    }
}

/// Every space's history over `[from, to)` in hours, days and weeks, in three time zones,
/// from the summaries and from the raw series: they must be equal. Answers how many hourly
/// UTC buckets came from summaries and how many such buckets there were.
async fn rollups_equal_raw(
    store: &dyn Store,
    from: Timestamp,
    to: Timestamp,
) -> Result<(usize, usize), TestCaseError> {
    let spaces = all_spaces(store).await;
    let (mut rolled, mut hourly) = (0, 0);
    for space in spaces.iter().map(|s| s.id) {
        for interval in [Interval::Minutes(60), Interval::Day, Interval::Week] {
            for tz in [
                chrono_tz::UTC,
                chrono_tz::Europe::Paris,
                chrono_tz::Asia::Kolkata,
            ] {
                let bounds = boundaries(from, to, interval, tz, 10_000);
                let best = history(store, space, &spaces, &bounds, Source::Summaries)
                    .await
                    .unwrap()
                    .unwrap();
                let raw = history(store, space, &spaces, &bounds, Source::Raw)
                    .await
                    .unwrap()
                    .unwrap();
                let differ = best
                    .buckets
                    .iter()
                    .zip(&raw.buckets)
                    .position(|(a, b)| a != b);
                prop_assert!(
                    differ.is_none() && best.buckets.len() == raw.buckets.len(),
                    "space {} by {:?} in {}, {} buckets of {} from rollups: first difference \
                     rollups {:?} raw {:?}",
                    space,
                    interval,
                    tz,
                    best.from_summaries,
                    bounds.len(),
                    differ.map(|i| &best.buckets[i]),
                    differ.map(|i| &raw.buckets[i])
                );
                if interval == Interval::Minutes(60) && tz == chrono_tz::UTC {
                    rolled += best.from_summaries;
                    hourly += bounds.len();
                }
            }
        }
    }
    Ok((rolled, hourly))
}

fn counts_match_reference(
    scenario: &Scenario,
    counts: &[(SpaceId, Timestamp, i64)],
) -> Result<(), TestCaseError> {
    for &(space, t, actual) in counts {
        let expected = reference::count_at(&scenario.layout, &scenario.messages(), space, t);
        prop_assert_eq!(actual, expected, "space {} at {}", space, t);
    }
    Ok(())
}

/// Delivers a stretched scenario to TimescaleDB: compresses every chunk halfway, so that the
/// second half lands in compressed chunks (late crossings into compressed chunks).
async fn deliver_and_compare(scenario: Scenario) -> Result<(), TestCaseError> {
    let scenario = stretch(&scenario, 60);
    let (store, url) = fresh().await;
    let store = store.as_ref();
    if let Some(interim) = &scenario.interim {
        store.apply_layout(interim).await.unwrap();
    }
    let half = scenario.batches.len() / 2;
    for (i, batch) in scenario.batches.iter().enumerate() {
        if i == scenario.layout_before_batch {
            store.apply_layout(&scenario.layout).await.unwrap();
        }
        if i == half {
            compress_all_chunks(&url).await.unwrap();
        }
        store.ingest(batch).await.unwrap();
    }
    if scenario.layout_before_batch == scenario.batches.len() {
        store.apply_layout(&scenario.layout).await.unwrap();
    }

    let mut counts = Vec::new();
    for space in scenario.space_ids() {
        for t in scenario.probe_times() {
            counts.push((
                space,
                t,
                store.count_at(space, Some(t)).await.unwrap().unwrap(),
            ));
        }
    }
    counts_match_reference(&scenario, &counts)?;

    let (from, to) = (
        base_time() - TimeDelta::days(2),
        base_time() + TimeDelta::days(5),
    );
    let (rolled, hourly) = rollups_equal_raw(store, from, to).await?;
    prop_assert_eq!(rolled, hourly, "every bucket is folded from summaries");
    Ok(())
}

#[test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
fn history_from_summaries_equals_the_raw_series_whatever_the_delivery() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    proptest!(ProptestConfig::with_cases(12), |(scenario in scenario_with_resets())| {
        runtime.block_on(deliver_and_compare(scenario))?;
    });
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn settings_are_kept_by_timescaledb_and_read_back() {
    let (store, _) = fresh().await;
    let status = store.timescale().await.unwrap().unwrap();
    assert_eq!(status.chunk_interval, Duration::from_secs(DAY));
    assert_eq!(status.compress_after, Some(Duration::from_secs(7 * DAY)));
    assert_eq!(status.raw_retention, None);

    let custom = TimescaleSettings {
        chunk_interval: Some(Duration::from_secs(6 * 3600)),
        compress_after: Some(Duration::from_secs(3 * DAY)),
        raw_retention: Some(Some(Duration::from_secs(30 * DAY))),
    };
    let status = store.configure_timescale(&custom).await.unwrap().unwrap();
    assert_eq!(status.chunk_interval, Duration::from_secs(6 * 3600));
    assert_eq!(status.compress_after, Some(Duration::from_secs(3 * DAY)));
    assert_eq!(status.raw_retention, Some(Duration::from_secs(30 * DAY)));

    // Only what is given changes; retention can be turned off again.
    let off = TimescaleSettings {
        raw_retention: Some(None),
        ..TimescaleSettings::default()
    };
    let status = store.configure_timescale(&off).await.unwrap().unwrap();
    assert_eq!(status.raw_retention, None);
    assert_eq!(status.compress_after, Some(Duration::from_secs(3 * DAY)));

    // A new connection (another roomer process) keeps the settings rather than resetting them.
    let url = {
        let (_, url) = fresh().await;
        url
    };
    let again = roomer_storage::connect(&url).await.unwrap();
    let first = again.timescale().await.unwrap().unwrap();
    again.configure_timescale(&custom).await.unwrap();
    let reopened = roomer_storage::connect(&url).await.unwrap();
    let status = reopened.timescale().await.unwrap().unwrap();
    assert_ne!(first.chunk_interval, status.chunk_interval);
    assert_eq!(status.chunk_interval, Duration::from_secs(6 * 3600));
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn raw_retention_drops_old_crossings_and_keeps_counts_and_history() {
    let (store, url) = fresh().await;
    let store = store.as_ref();
    reference_building::apply(store).await;
    let rows = reference_building::crossings();
    for batch in rows.chunks(50) {
        store.ingest(batch).await.unwrap();
    }
    let (from, to) = (
        rows[0].ts - TimeDelta::days(1),
        rows[rows.len() - 1].ts + TimeDelta::days(1),
    );
    let spaces = all_spaces(store).await;
    let snapshot = || async {
        let mut seen = Vec::new();
        for space in spaces.iter().map(|s| s.id) {
            for interval in [Interval::Minutes(60), Interval::Day] {
                let bounds = boundaries(from, to, interval, chrono_tz::Europe::Paris, 10_000);
                let answer = history(store, space, &spaces, &bounds, Source::Summaries)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(answer.from_summaries, bounds.len());
                seen.push(format!("{:?}", answer.buckets));
            }
            for row in &rows {
                seen.push(format!(
                    "{:?}",
                    store.count_at(space, Some(row.ts)).await.unwrap()
                ));
            }
        }
        seen
    };
    let before = snapshot().await;
    assert!(store.totals().await.unwrap().crossings > 500);

    let thirty_days = TimescaleSettings {
        raw_retention: Some(Some(Duration::from_secs(30 * DAY))),
        ..TimescaleSettings::default()
    };
    store.configure_timescale(&thirty_days).await.unwrap();
    // What the retention policy does on its schedule, now.
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let job: i32 = sqlx::query_scalar(
        "SELECT job_id FROM timescaledb_information.jobs \
         WHERE proc_name = 'policy_retention' AND hypertable_name = 'crossings'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sql(&url, &format!("CALL run_job({job})")).await;

    assert_eq!(
        store.totals().await.unwrap().crossings,
        0,
        "2018 is long gone"
    );
    assert_eq!(
        snapshot().await,
        before,
        "counts and history outlive raw crossings"
    );
}
