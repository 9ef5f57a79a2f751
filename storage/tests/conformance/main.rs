//! One conformance suite, run against every backend: in memory and SQLite always, PostgreSQL when
//! `TEST_DATABASE_URL` is set, TimescaleDB when `TEST_TIMESCALE_URL` is set (otherwise their
//! copies of the suite are reported as ignored).

mod batches;
mod cadence;
mod costs;
mod fixtures;
mod pending;
mod properties;
mod secrets;
mod stories;

/// Declares every story of the suite as a test against one backend.
macro_rules! conformance {
    ($backend:ident, $fixture:path, $eager:path, [$(#[$attr:meta])*]) => {
        mod $backend {
            conformance!(@tests $fixture, [$(#[$attr])*],
                a_fresh_store_knows_only_outside,
                applying_a_layout_twice_changes_nothing,
                counts_follow_event_time_and_clamp_at_zero,
                repeats_count_once,
                an_upload_sent_again_with_more_counts_only_the_new,
                a_late_crossing_corrects_every_later_count,
                crossings_of_unknown_dpus_wait_for_their_installation,
                moving_a_dpu_reattributes_its_crossings,
                changing_a_doorways_sides_moves_its_crossings,
                event_ids_tell_apart_crossings_of_one_instant_only,
                a_leap_second_is_the_next_minute_and_repeats_count_once,
                rejected_messages_are_kept_newest_first,
                an_invalid_layout_changes_nothing,
                dpu_status_and_last_seen_are_kept_per_dpu,
                registering_and_correcting_installations_equals_a_fresh_replay,
                the_layout_can_be_edited_piece_by_piece,
                a_stretch_of_series_reads_back_for_history,
                changing_a_daily_reset_recounts_history,
                tokens_are_kept_by_hash_listed_and_revoked,
            );
            conformance!(@in costs, $eager, [$(#[$attr])*], a_late_crossing_costs_the_same_whatever_came_after_it);
            conformance!(@in batches, $fixture, [$(#[$attr])*], a_batch_stores_everything_its_messages_said);
            conformance!(@in batches, $fixture, [$(#[$attr])*], a_large_batch_of_many_dpus_counts_as_the_reference_model);
            conformance!(@in secrets, $fixture, [$(#[$attr])*], dpu_secrets_are_issued_checked_replaced_and_withdrawn);
        }
    };
    (@tests $fixture:path, $attrs:tt, $name:ident, $($rest:ident,)*) => {
        conformance!(@one $fixture, $attrs, $name);
        conformance!(@tests $fixture, $attrs, $($rest,)*);
    };
    (@tests $fixture:path, $attrs:tt,) => {};
    (@in $module:ident, $fixture:path, [$(#[$attr:meta])*], $name:ident) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $name() {
            let fixture = $fixture().await;
            crate::$module::$name(fixture.store.as_ref()).await;
        }
    };
    (@one $fixture:path, [$(#[$attr:meta])*], $name:ident) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $name() {
            let fixture = $fixture().await;
            crate::stories::$name(fixture.store.as_ref()).await;
        }
    };
}

conformance!(
    memory,
    crate::fixtures::memory,
    crate::fixtures::memory_eager,
    []
);
conformance!(
    sqlite,
    crate::fixtures::sqlite,
    crate::fixtures::sqlite_eager,
    []
);
conformance!(
    postgres,
    crate::fixtures::postgres,
    crate::fixtures::postgres_eager,
    [#[cfg_attr(not(roomer_postgres_tests), ignore = "set TEST_DATABASE_URL to run against PostgreSQL")]]
);
conformance!(
    timescale,
    crate::fixtures::timescale,
    crate::fixtures::timescale_eager,
    [#[cfg_attr(not(roomer_timescale_tests), ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB")]]
);
