//! Rules 1–6 as properties: whatever the order, repetition and batching of the messages, and
//! whenever (and however wrongly at first) the layout was applied, every space's count at every
//! instant equals the reference model's.

use proptest::prelude::*;
use roomer_occupancy::ledger::Ledger;
use roomer_occupancy::reference;
use roomer_occupancy::testkit::{scenario, scenario_with_resets, Scenario};

fn replay(scenario: &Scenario) -> Ledger {
    let mut ledger = Ledger::default();
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn counts_match_the_reference_model_whatever_the_delivery(scenario in scenario()) {
        let ledger = replay(&scenario);
        let messages = scenario.messages();
        prop_assert_eq!(ledger.len(), reference::counted(&messages));
        for space in scenario.space_ids() {
            for t in scenario.probe_times() {
                let expected = reference::count_at(&scenario.layout, &messages, space, t);
                prop_assert_eq!(ledger.count_at(space, t), expected, "space {} at {}", space, t);
            }
            let far = scenario.probe_times().last().copied().unwrap();
            prop_assert_eq!(
                ledger.current(space),
                reference::count_at(&scenario.layout, &messages, space, far)
            );
        }
    }

    /// The same, with daily resets at local times (daylight-saving zones included): a reset
    /// returns the count to 0, and a late crossing before it corrects counts only up to it.
    #[test]
    fn resets_match_the_reference_model_whatever_the_delivery(scenario in scenario_with_resets()) {
        let ledger = replay(&scenario);
        let messages = scenario.messages();
        for space in scenario.space_ids() {
            for t in scenario.probe_times() {
                let expected = reference::count_at(&scenario.layout, &messages, space, t);
                prop_assert_eq!(ledger.count_at(space, t), expected, "space {} at {}", space, t);
            }
        }
    }
}
