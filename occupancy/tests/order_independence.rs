//! Rules 1–6 as properties: whatever the order, repetition and batching of the messages, and
//! whenever (and however wrongly at first) the layout was applied, every space's count at every
//! instant equals the reference model's. Each property runs twice: with the series kept per
//! entry (as the SQL backends keep it) and as tiered summaries.

use proptest::prelude::*;
use roomer_occupancy::ledger::{Ledger, SeriesModel};
use roomer_occupancy::reference;
use roomer_occupancy::series::PerEntry;
use roomer_occupancy::testkit::{scenario, scenario_with_resets, Scenario};
use roomer_occupancy::tiers::TieredSeries;

fn replay<S: SeriesModel>(scenario: &Scenario) -> Ledger<S> {
    let mut ledger = Ledger::<S>::default();
    if let Some(interim) = &scenario.interim {
        ledger.apply_layout(interim);
    }
    for (i, batch) in scenario.batches.iter().enumerate() {
        if i == scenario.layout_before_batch {
            ledger.apply_layout(&scenario.layout);
        }
        ledger.ingest(batch);
    }
    if scenario.layout_before_batch == scenario.batches.len() {
        ledger.apply_layout(&scenario.layout);
    }
    ledger
}

/// Every space's count at every probe time is the reference's; so is its current count (the
/// count after its latest crossing) when nothing resets after it (`with_current`).
fn counts_match<S: SeriesModel>(
    scenario: &Scenario,
    with_current: bool,
) -> Result<(), TestCaseError> {
    let ledger = replay::<S>(scenario);
    let messages = scenario.messages();
    prop_assert_eq!(ledger.len(), reference::counted(&messages));
    for space in scenario.space_ids() {
        for t in scenario.probe_times() {
            let expected = reference::count_at(&scenario.layout, &messages, space, t);
            prop_assert_eq!(
                ledger.count_at(space, t),
                expected,
                "space {} at {}",
                space,
                t
            );
        }
        if !with_current {
            continue;
        }
        let far = scenario.probe_times().last().copied().unwrap();
        prop_assert_eq!(
            ledger.current(space),
            reference::count_at(&scenario.layout, &messages, space, far)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn counts_match_the_reference_model_whatever_the_delivery(scenario in scenario()) {
        counts_match::<PerEntry>(&scenario, true)?;
        counts_match::<TieredSeries>(&scenario, true)?;
    }

    /// The same, with daily resets at local times (daylight-saving zones included): a reset
    /// returns the count to 0, and a late crossing before it corrects counts only up to it.
    #[test]
    fn resets_match_the_reference_model_whatever_the_delivery(scenario in scenario_with_resets()) {
        counts_match::<PerEntry>(&scenario, false)?;
        counts_match::<TieredSeries>(&scenario, false)?;
    }
}
