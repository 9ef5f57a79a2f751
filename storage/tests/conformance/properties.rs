//! The order-independence property, against a real database: random buildings and event sets,
//! delivered shuffled, repeated and batched, with the layout applied late and first wrong.

use crate::fixtures::{self, Fixture};
use occupancy::reference;
use occupancy::testkit::{scenario, scenario_with_resets, Scenario};
use proptest::prelude::*;
use std::future::Future;

async fn replay(scenario: &Scenario, fixture: Fixture) -> Result<(), TestCaseError> {
    let store = fixture.store.as_ref();
    if let Some(interim) = &scenario.interim {
        store.apply_layout(interim).await.unwrap();
    }
    for (i, batch) in scenario.batches.iter().enumerate() {
        if i == scenario.layout_before_batch {
            store.apply_layout(&scenario.layout).await.unwrap();
        }
        store.ingest(batch).await.unwrap();
    }
    if scenario.layout_before_batch == scenario.batches.len() {
        store.apply_layout(&scenario.layout).await.unwrap();
    }
    let totals = store.totals().await.unwrap();
    prop_assert_eq!(totals.crossings as usize, scenario.events.len());
    for space in scenario.space_ids() {
        for t in scenario.probe_times() {
            let expected = reference::count_at(&scenario.layout, &scenario.events, space, t);
            let actual = store.count_at(space, Some(t)).await.unwrap().unwrap();
            prop_assert_eq!(actual, expected, "space {} at {}", space, t);
        }
        // "Now" is long after the scenario's hour (a reset, if any, has happened since).
        let now = chrono::Utc::now();
        let expected = reference::count_at(&scenario.layout, &scenario.events, space, now);
        prop_assert_eq!(
            store.count_at(space, None).await.unwrap().unwrap(),
            expected
        );
    }
    Ok(())
}

fn check<F: Future<Output = Fixture>>(cases: u32, fixture: fn() -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    proptest!(ProptestConfig::with_cases(cases), |(scenario in scenario())| {
        runtime.block_on(async { replay(&scenario, fixture().await).await })?;
    });
}

/// The same with daily resets on some spaces (UTC, Paris, Kolkata).
fn check_resets<F: Future<Output = Fixture>>(cases: u32, fixture: fn() -> F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    proptest!(ProptestConfig::with_cases(cases), |(scenario in scenario_with_resets())| {
        runtime.block_on(async { replay(&scenario, fixture().await).await })?;
    });
}

#[test]
fn sqlite_resets_match_the_reference_model_whatever_the_delivery() {
    check_resets(64, fixtures::sqlite);
}

#[test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
fn postgres_resets_match_the_reference_model_whatever_the_delivery() {
    check_resets(32, fixtures::postgres);
}

#[test]
fn sqlite_counts_match_the_reference_model_whatever_the_delivery() {
    check(96, fixtures::sqlite);
}

#[test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
fn postgres_counts_match_the_reference_model_whatever_the_delivery() {
    check(48, fixtures::postgres);
}

#[test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
fn timescale_counts_match_the_reference_model_whatever_the_delivery() {
    check(24, fixtures::timescale);
}

#[test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
fn timescale_resets_match_the_reference_model_whatever_the_delivery() {
    check_resets(16, fixtures::timescale);
}
