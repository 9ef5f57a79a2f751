//! The order-independence property, against a real database: random buildings and event sets,
//! delivered shuffled, repeated and batched, with the layout applied late and first wrong.

use crate::fixtures::{self, Fixture};
use proptest::prelude::*;
use roomer_occupancy::reference;
use roomer_occupancy::testkit::{crowded_scenario, scenario, scenario_with_resets, Scenario};
use std::future::Future;

/// How the final layout reaches the store.
#[derive(Clone, Copy, Debug)]
enum Correction {
    /// `roomer layout apply` of the whole file.
    Layout,
    /// Spaces and doorways from the file, then each DPU's history on its own, as
    /// `PUT /api/v1/dpus/{id}/installations` sends it.
    Installations,
}

async fn correct(store: &dyn roomer_storage::Store, scenario: &Scenario, how: Correction) {
    match how {
        Correction::Layout => {
            store.apply_layout(&scenario.layout).await.unwrap();
        }
        Correction::Installations => {
            let frame = roomer_occupancy::Layout {
                dpus: Vec::new(),
                ..scenario.layout.clone()
            };
            store.apply_layout(&frame).await.unwrap();
            let interim = scenario.interim.iter().flat_map(|l| &l.dpus);
            for dpu in interim.chain(&scenario.layout.dpus) {
                let history = scenario
                    .layout
                    .dpus
                    .iter()
                    .find(|d| d.id == dpu.id)
                    .map_or(&[][..], |d| &d.installations[..]);
                store.set_installations(&dpu.id, history).await.unwrap();
            }
        }
    }
}

async fn replay_corrected(
    scenario: &Scenario,
    fixture: Fixture,
    how: Correction,
) -> Result<(), TestCaseError> {
    let store = fixture.store.as_ref();
    if let Some(interim) = &scenario.interim {
        store.apply_layout(interim).await.unwrap();
    }
    for (i, batch) in scenario.batches.iter().enumerate() {
        if i == scenario.layout_before_batch {
            correct(store, scenario, how).await;
        }
        store.ingest(batch).await.unwrap();
    }
    if scenario.layout_before_batch == scenario.batches.len() {
        correct(store, scenario, how).await;
    }
    let totals = store.totals().await.unwrap();
    prop_assert_eq!(
        totals.crossings as usize,
        reference::counted(&scenario.messages())
    );
    check_counts(store, scenario).await
}

/// Every space's count at each probe time, and now, equals the reference model's; so do the
/// counts now read for all spaces at once (`counts_now`, and the list of spaces).
pub(crate) async fn check_counts(
    store: &dyn roomer_storage::Store,
    scenario: &Scenario,
) -> Result<(), TestCaseError> {
    let messages = scenario.messages();
    let now = chrono::Utc::now();
    let mut expected_now: Vec<(i64, i64)> = scenario
        .space_ids()
        .into_iter()
        .map(|s| (s, reference::count_at(&scenario.layout, &messages, s, now)))
        .collect();
    expected_now.sort();
    let mut at_once = store.counts_now(&scenario.space_ids()).await.unwrap();
    at_once.sort();
    prop_assert_eq!(&at_once, &expected_now, "counts_now");
    let listed: Vec<(i64, i64)> = store
        .spaces(&roomer_storage::Page::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|s| scenario.space_ids().contains(&s.space.id))
        .map(|s| (s.space.id, s.count))
        .collect();
    prop_assert_eq!(&listed, &expected_now, "spaces listed with their counts");
    for space in scenario.space_ids() {
        for t in scenario.probe_times() {
            let expected = reference::count_at(&scenario.layout, &messages, space, t);
            let actual = store.count_at(space, Some(t)).await.unwrap().unwrap();
            prop_assert_eq!(actual, expected, "space {} at {}", space, t);
        }
        // "Now" is long after the scenario's hour (a reset, if any, has happened since).
        let now = chrono::Utc::now();
        let expected = reference::count_at(&scenario.layout, &messages, space, now);
        prop_assert_eq!(
            store.count_at(space, None).await.unwrap().unwrap(),
            expected
        );
    }
    Ok(())
}

/// Replays `cases` scenarios drawn from `scenarios` on fresh stores from `fixture`.
fn replay_all<F: Future<Output = Fixture>>(
    cases: u32,
    scenarios: impl Strategy<Value = Scenario>,
    fixture: fn() -> F,
    how: Correction,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    proptest!(ProptestConfig::with_cases(cases), |(scenario in scenarios)| {
        runtime.block_on(async { replay_corrected(&scenario, fixture().await, how).await })?;
    });
}

fn check<F: Future<Output = Fixture>>(cases: u32, fixture: fn() -> F) {
    replay_all(cases, scenario(), fixture, Correction::Layout);
}

/// The same with daily resets on some spaces (UTC, Paris, Kolkata).
fn check_resets<F: Future<Output = Fixture>>(cases: u32, fixture: fn() -> F) {
    replay_all(cases, scenario_with_resets(), fixture, Correction::Layout);
}

/// The same with hundreds of crossings crowded into a minute or a second: the minutes that
/// keep summaries per second (`tiers::dense`), becoming dense, and sparse again when a
/// corrected layout moves crossings away.
fn check_crowded<F: Future<Output = Fixture>>(cases: u32, fixture: fn() -> F) {
    replay_all(cases, crowded_scenario(), fixture, Correction::Layout);
}

/// The same, with the layout corrected one DPU history at a time.
fn check_installations<F: Future<Output = Fixture>>(cases: u32, fixture: fn() -> F) {
    replay_all(cases, scenario(), fixture, Correction::Installations);
}

/// The in-memory backend runs the same engine as the databases in a fraction of the time,
/// so the engine meets as many scenarios as the domain's own property tests.
#[test]
fn memory_counts_match_the_reference_model_whatever_the_delivery() {
    check(2_000, fixtures::memory);
}

#[test]
fn memory_resets_match_the_reference_model_whatever_the_delivery() {
    check_resets(2_000, fixtures::memory);
}

#[test]
fn memory_histories_put_one_by_one_match_the_reference_model() {
    check_installations(1_000, fixtures::memory);
}

#[test]
fn memory_crowded_minutes_match_the_reference_model() {
    check_crowded(100, fixtures::memory_eager);
}

#[test]
fn memory_crowded_minutes_noted_match_the_reference_model() {
    check_crowded(100, fixtures::memory_often);
}

#[test]
fn sqlite_crowded_minutes_match_the_reference_model() {
    check_crowded(12, fixtures::sqlite_eager);
}

#[test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
fn postgres_crowded_minutes_match_the_reference_model() {
    check_crowded(6, fixtures::postgres_eager);
}

#[test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
fn timescale_crowded_minutes_match_the_reference_model() {
    check_crowded(4, fixtures::timescale);
}

#[test]
fn sqlite_histories_put_one_by_one_match_the_reference_model() {
    check_installations(64, fixtures::sqlite);
}

#[test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
fn postgres_histories_put_one_by_one_match_the_reference_model() {
    check_installations(32, fixtures::postgres);
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
