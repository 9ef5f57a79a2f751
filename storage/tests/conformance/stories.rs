//! What every backend must do, told as short stories about one building.

use chrono::TimeDelta;
use roomer_occupancy::layout::DpuLayout;
use roomer_occupancy::{
    Crossing, Direction, Doorway, DpuId, Installation, Layout, Space, Timestamp, OUTSIDE,
};
use roomer_storage::{Page, Rejected, RejectedFilter, Store};

pub(crate) const ROOM_A: i64 = 1;
const ROOM_B: i64 = 2;

pub(crate) fn t(minute: i64) -> Timestamp {
    "2018-02-26T08:00:00Z".parse::<Timestamp>().unwrap() + TimeDelta::minutes(minute)
}

pub(crate) fn dpu(id: &str) -> DpuId {
    DpuId::new(id).unwrap()
}

pub(crate) fn crossing(dpu_id: &str, minute: i64, direction: i64) -> Crossing {
    Crossing::new(
        dpu(dpu_id),
        t(minute),
        Direction::from_i64(direction).unwrap(),
        None,
    )
}

/// The reference building: DPU 283 over Outside → A, DPU 423 over B → A.
pub(crate) fn building() -> Layout {
    Layout {
        spaces: vec![Space::new(ROOM_A, "Space A"), Space::new(ROOM_B, "Space B")],
        doorways: vec![
            Doorway {
                id: 1,
                name: "Doorway X".into(),
                exiting_to: OUTSIDE,
                entering_to: ROOM_A,
            },
            Doorway {
                id: 2,
                name: "Doorway Z".into(),
                exiting_to: ROOM_B,
                entering_to: ROOM_A,
            },
        ],
        dpus: vec![
            installed("283", 1, t(-1_000)),
            installed("423", 2, t(-1_000)),
        ],
    }
}

fn installed(id: &str, doorway: i64, from: Timestamp) -> DpuLayout {
    DpuLayout {
        id: dpu(id),
        installations: vec![Installation {
            doorway,
            from,
            until: None,
        }],
    }
}

pub(crate) async fn count(store: &dyn Store, space: i64, minute: Option<i64>) -> i64 {
    store
        .count_at(space, minute.map(t))
        .await
        .unwrap()
        .expect("space exists")
}

pub async fn a_fresh_store_knows_only_outside(store: &dyn Store) {
    let spaces = store.spaces(&Page::all()).await.unwrap();
    assert_eq!(spaces.len(), 1);
    assert_eq!(
        (
            spaces[0].space.id,
            spaces[0].space.name.as_str(),
            spaces[0].count
        ),
        (OUTSIDE, "Outside", 0)
    );
    assert_eq!(store.count_at(42, None).await.unwrap(), None);
}

pub async fn applying_a_layout_twice_changes_nothing(store: &dyn Store) {
    let first = store.apply_layout(&building()).await.unwrap();
    assert_eq!(
        first.changed,
        2 + 2 + 2 + 2,
        "spaces, doorways, DPUs and histories"
    );
    let second = store.apply_layout(&building()).await.unwrap();
    assert_eq!(second.changed, 0);
    assert_eq!(second.reattributed, 0);
    let names: Vec<String> = store
        .spaces(&Page::all())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.space.name)
        .collect();
    assert_eq!(names, ["Outside", "Space A", "Space B"]);
    assert!(store.dpu_known(&dpu("283")).await.unwrap());
    assert!(!store.dpu_known(&dpu("999")).await.unwrap());
}

pub async fn counts_follow_event_time_and_clamp_at_zero(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    // One person walks out of an empty A into B: absorbed in A, but B gains one.
    let outcome = store
        .ingest(&[
            crossing("283", 1, 1),
            crossing("283", 2, 1),
            crossing("423", 0, -1),
        ])
        .await
        .unwrap();
    assert_eq!(outcome.report.inserted, 3);
    assert_eq!(count(store, ROOM_A, Some(0)).await, 0);
    assert_eq!(count(store, ROOM_B, Some(0)).await, 1);
    assert_eq!(count(store, ROOM_A, Some(1)).await, 1);
    assert_eq!(count(store, ROOM_A, None).await, 2);
    assert_eq!(
        count(store, OUTSIDE, None).await,
        -2,
        "Outside is not clamped"
    );
    assert_eq!(count(store, ROOM_A, Some(-5)).await, 0, "before any data");
    assert_eq!(
        count(store, ROOM_A, Some(100_000)).await,
        2,
        "in the future: now"
    );
}

pub async fn repeats_count_once(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let first = store
        .ingest(&[crossing("283", 1, 1), crossing("283", 1, 1)])
        .await
        .unwrap();
    assert_eq!((first.report.inserted, first.report.duplicates), (1, 1));
    let later = store.ingest(&[crossing("283", 1, 1)]).await.unwrap();
    assert_eq!((later.report.inserted, later.report.duplicates), (0, 1));
    assert_eq!(count(store, ROOM_A, None).await, 1);
    assert_eq!(store.totals().await.unwrap().crossings, 1);
}

/// A DPU's upload after an outage, sent again with more crossings among those already
/// stored (one offline buffer flushed twice): only the new ones count.
pub async fn an_upload_sent_again_with_more_counts_only_the_new(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let arrivals = |minutes: &mut dyn Iterator<Item = i64>| -> Vec<Crossing> {
        minutes.map(|m| crossing("283", m, 1)).collect()
    };
    let first = arrivals(&mut (0..40).step_by(2));
    let outcome = store.ingest(&first).await.unwrap();
    assert_eq!(
        (outcome.report.inserted, outcome.report.duplicates),
        (20, 0)
    );
    let again = arrivals(&mut (0..40).step_by(2).chain([7, 13, 41]));
    let outcome = store.ingest(&again).await.unwrap();
    assert_eq!(
        (outcome.report.inserted, outcome.report.duplicates),
        (3, 20)
    );
    assert_eq!(count(store, ROOM_A, None).await, 23);
    assert_eq!(count(store, ROOM_A, Some(13)).await, 9);
    assert_eq!(store.totals().await.unwrap().crossings, 23);
}

pub async fn a_late_crossing_corrects_every_later_count(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    store
        .ingest(&[
            crossing("283", 10, 1),
            crossing("283", 20, -1),
            crossing("283", 30, -1),
        ])
        .await
        .unwrap();
    assert_eq!(count(store, ROOM_A, None).await, 0);
    // The entry at minute 5 arrives late: minute 30's departure is no longer absorbed.
    store.ingest(&[crossing("283", 5, 1)]).await.unwrap();
    assert_eq!(count(store, ROOM_A, Some(5)).await, 1);
    assert_eq!(count(store, ROOM_A, Some(10)).await, 2);
    assert_eq!(count(store, ROOM_A, Some(20)).await, 1);
    assert_eq!(count(store, ROOM_A, None).await, 0);
    assert_eq!(count(store, OUTSIDE, None).await, 0);
}

pub async fn crossings_of_unknown_dpus_wait_for_their_installation(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let outcome = store
        .ingest(&[crossing("777", 1, 1), crossing("777", 2, 1)])
        .await
        .unwrap();
    assert_eq!((outcome.report.inserted, outcome.report.pending), (2, 2));
    assert_eq!(count(store, ROOM_B, None).await, 0);
    assert_eq!(store.totals().await.unwrap().pending, 2);

    let mut layout = building();
    layout.doorways.push(Doorway {
        id: 3,
        name: "Back door".into(),
        exiting_to: OUTSIDE,
        entering_to: ROOM_B,
    });
    layout.dpus.push(DpuLayout {
        id: dpu("777"),
        installations: vec![Installation {
            doorway: 3,
            from: t(2),
            until: None,
        }],
    });
    let report = store.apply_layout(&layout).await.unwrap();
    assert_eq!(
        report.reattributed, 1,
        "only the crossing at minute 2 is covered"
    );
    assert_eq!(count(store, ROOM_B, None).await, 1);
    assert_eq!(count(store, ROOM_B, Some(1)).await, 0);
    assert_eq!(store.totals().await.unwrap().pending, 1);
}

pub async fn moving_a_dpu_reattributes_its_crossings(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    store
        .ingest(&[crossing("283", 1, 1), crossing("283", 20, 1)])
        .await
        .unwrap();
    assert_eq!(count(store, ROOM_A, None).await, 2);
    // It turns out DPU 283 was moved over doorway Z (B → A) at minute 10.
    let mut layout = building();
    layout.dpus[0].installations = vec![
        Installation {
            doorway: 1,
            from: t(-1_000),
            until: Some(t(10)),
        },
        Installation {
            doorway: 2,
            from: t(10),
            until: None,
        },
    ];
    let report = store.apply_layout(&layout).await.unwrap();
    assert_eq!(report.reattributed, 1);
    assert_eq!(count(store, ROOM_A, None).await, 2);
    assert_eq!(count(store, OUTSIDE, None).await, -1);
    assert_eq!(
        count(store, ROOM_B, None).await,
        0,
        "B was empty: the departure is absorbed"
    );
}

pub async fn changing_a_doorways_sides_moves_its_crossings(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    store.ingest(&[crossing("423", 1, 1)]).await.unwrap();
    assert_eq!(count(store, ROOM_A, None).await, 1);
    // Doorway Z was described backwards: the DPU looks into B.
    let mut layout = building();
    layout.doorways[1] = Doorway {
        id: 2,
        name: "Doorway Z".into(),
        exiting_to: ROOM_A,
        entering_to: ROOM_B,
    };
    store.apply_layout(&layout).await.unwrap();
    assert_eq!(count(store, ROOM_A, None).await, 0);
    assert_eq!(count(store, ROOM_B, None).await, 1);
}

/// Rule 3: a crossing is its DPU, instant and direction; an id only tells apart crossings
/// that share all three, and never refuses, merges or un-counts anything.
pub async fn event_ids_tell_apart_crossings_of_one_instant_only(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let with_id = |minute, id| {
        let mut c = crossing("283", minute, 1);
        c.event_id = id;
        c
    };
    store.ingest(&[with_id(1, Some(7))]).await.unwrap();
    // Id 7 again on another crossing (the DPU rebooted and counts from 1 again): counted.
    let outcome = store
        .ingest(&[with_id(2, Some(7)), with_id(1, Some(7))])
        .await
        .unwrap();
    assert_eq!((outcome.report.inserted, outcome.report.duplicates), (1, 1));
    assert_eq!(count(store, ROOM_A, None).await, 2);

    // Two people seen in one instant, told apart by their ids; repeats with an id or without.
    store
        .ingest(&[with_id(3, Some(8)), with_id(3, Some(9))])
        .await
        .unwrap();
    let outcome = store
        .ingest(&[with_id(3, None), with_id(3, Some(9))])
        .await
        .unwrap();
    assert_eq!((outcome.report.inserted, outcome.report.duplicates), (0, 2));
    assert_eq!(count(store, ROOM_A, Some(3)).await, 4);

    // Sent without an id first, then with one: still one crossing; a second id adds one.
    store.ingest(&[with_id(5, None)]).await.unwrap();
    let outcome = store.ingest(&[with_id(5, Some(10))]).await.unwrap();
    assert_eq!((outcome.report.inserted, outcome.report.duplicates), (0, 1));
    assert_eq!(count(store, ROOM_A, Some(5)).await, 5);
    store.ingest(&[with_id(5, Some(11))]).await.unwrap();
    assert_eq!(count(store, ROOM_A, Some(5)).await, 6);
    assert_eq!(count(store, ROOM_A, Some(4)).await, 4);
    assert_eq!(store.totals().await.unwrap().crossings, 6);

    // Three people leaving in that same instant: the instant's arrivals come first (rule 1).
    let out = |id| {
        let mut c = crossing("283", 5, -1);
        c.event_id = Some(id);
        c
    };
    store.ingest(&[out(1), out(2), out(3)]).await.unwrap();
    assert_eq!(count(store, ROOM_A, Some(5)).await, 3);
}

/// A leap second is the first second of the next minute: sent twice, or with that next
/// second in one batch, it is one crossing, and storing it again is an ordinary repeat.
pub async fn a_leap_second_is_the_next_minute_and_repeats_count_once(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let at = |text: &str| {
        let ts: roomer_occupancy::Timestamp = chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&chrono::Utc);
        Crossing::new(dpu("283"), ts, roomer_occupancy::Direction::In, None)
    };
    let leap = at("2016-12-31T23:59:60Z");
    let next = at("2017-01-01T00:00:00Z");
    let outcome = store.ingest(&[leap.clone(), next.clone()]).await.unwrap();
    assert_eq!((outcome.report.inserted, outcome.report.duplicates), (1, 1));
    let outcome = store.ingest(&[leap.clone(), leap]).await.unwrap();
    assert_eq!((outcome.report.inserted, outcome.report.duplicates), (0, 2));
    store.ingest(&[next]).await.unwrap();
    // Before the DPU's installation: stored as pending, once.
    let totals = store.totals().await.unwrap();
    assert_eq!((totals.crossings, totals.pending), (1, 1));
}

pub async fn rejected_messages_are_kept_newest_first(store: &dyn Store) {
    let rejected = |minute: i64, reason: &str| Rejected {
        received_at: t(minute),
        source: "dpus/283/crossings".into(),
        dpu_id: Some("283".into()),
        reason: reason.into(),
        detail: format!("{reason} detail"),
        payload: vec![0xff, b'{'],
    };
    store
        .reject(&[rejected(1, "not_json"), rejected(2, "bad_direction")])
        .await
        .unwrap();
    let mut other_dpu = rejected(3, "not_json");
    other_dpu.dpu_id = Some("423".into());
    store.reject(&[other_dpu.clone()]).await.unwrap();
    let newest = |limit| RejectedFilter::newest(limit);
    assert_eq!(
        store.rejected(&newest(10)).await.unwrap(),
        vec![
            other_dpu.clone(),
            rejected(2, "bad_direction"),
            rejected(1, "not_json")
        ]
    );
    assert_eq!(store.rejected(&newest(1)).await.unwrap().len(), 1);
    let by_dpu = RejectedFilter {
        dpu_id: Some("283".into()),
        ..newest(10)
    };
    assert_eq!(
        store.rejected(&by_dpu).await.unwrap(),
        vec![rejected(2, "bad_direction"), rejected(1, "not_json")]
    );
    let by_reason = RejectedFilter {
        reason: Some("not_json".into()),
        ..newest(10)
    };
    assert_eq!(
        store.rejected(&by_reason).await.unwrap(),
        vec![other_dpu, rejected(1, "not_json")]
    );
    let both = RejectedFilter {
        dpu_id: Some("423".into()),
        ..by_reason
    };
    assert_eq!(store.rejected(&both).await.unwrap().len(), 1);
    assert_eq!(store.totals().await.unwrap().rejected, 3);
}

pub async fn an_invalid_layout_changes_nothing(store: &dyn Store) {
    let mut layout = building();
    layout.doorways[0].entering_to = OUTSIDE;
    assert!(store.apply_layout(&layout).await.is_err());
    assert_eq!(store.spaces(&Page::all()).await.unwrap().len(), 1);
}

pub async fn dpu_status_and_last_seen_are_kept_per_dpu(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    store.ingest(&[crossing("283", 1, 1)]).await.unwrap();
    store
        .record_seen(&[(dpu("283"), t(1)), (dpu("283"), t(0))])
        .await
        .unwrap();
    store.record_status(&dpu("283"), true, t(2)).await.unwrap();
    // A stale status (sent earlier, delivered later) does not override the newer one.
    store.record_status(&dpu("283"), false, t(1)).await.unwrap();
    store.record_status(&dpu("777"), true, t(3)).await.unwrap();

    let long_ago = t(-10_000_000);
    let dpus = store
        .dpus(None, &Page::all(), t(5), long_ago)
        .await
        .unwrap();
    let ids: Vec<&str> = dpus.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["283", "423", "777"]);
    let d283 = &dpus[0];
    assert!(d283.declared);
    assert_eq!(
        (d283.online, d283.status_at, d283.last_seen),
        (Some(true), Some(t(2)), Some(t(2)))
    );
    assert_eq!((d283.doorway, d283.events_today), (Some(1), 1));
    assert_eq!(
        (dpus[1].online, dpus[1].last_seen, dpus[1].doorway),
        (None, None, Some(2))
    );
    assert!(!dpus[2].declared);
    assert_eq!((dpus[2].online, dpus[2].doorway), (Some(true), None));

    let only = store
        .dpus(Some(&dpu("283")), &Page::all(), t(5), t(10_000_000))
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(
        only[0].events_today, 0,
        "nothing received since that day started"
    );
    assert!(store
        .dpus(Some(&dpu("999")), &Page::all(), t(5), long_ago)
        .await
        .unwrap()
        .is_empty());
}

pub async fn registering_and_correcting_installations_equals_a_fresh_replay(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    // DPU 999 is not registered yet: its crossings wait.
    let events = vec![
        crossing("999", 1, 1),
        crossing("999", 2, 1),
        crossing("283", 3, 1),
        crossing("999", 4, -1),
        crossing("999", 6, 1),
        crossing("283", 7, -1),
        crossing("999", 8, -1),
        crossing("999", 9, 1),
    ];
    store.ingest(&events).await.unwrap();
    assert_eq!(count(store, ROOM_A, None).await, 0);

    let over = |doorway: i64, from: i64, until: Option<i64>| Installation {
        doorway,
        from: t(from),
        until: until.map(t),
    };
    let first = vec![over(1, -1_000, None)];
    let report = store.set_installations(&dpu("999"), &first).await.unwrap();
    assert_eq!(report.reattributed, 6, "the pending crossings are counted");
    // It hung over doorway Z (B → A) from minute 5 on.
    let corrected = vec![over(1, -1_000, Some(5)), over(2, 5, None)];
    store
        .set_installations(&dpu("999"), &corrected)
        .await
        .unwrap();
    let again = store
        .set_installations(&dpu("999"), &corrected)
        .await
        .unwrap();
    assert_eq!((again.changed, again.reattributed), (0, 0), "idempotent");

    let mut layout = building();
    layout.dpus.push(DpuLayout {
        id: dpu("999"),
        installations: corrected,
    });
    for space in [OUTSIDE, ROOM_A, ROOM_B] {
        for minute in 0..=10 {
            assert_eq!(
                count(store, space, Some(minute)).await,
                roomer_occupancy::reference::count_at(&layout, &events, space, t(minute)),
                "space {space} at minute {minute}"
            );
        }
    }

    // A history over a doorway that does not exist, or overlapping itself, changes nothing.
    for bad in [
        vec![over(7, 0, None)],
        vec![over(1, 0, None), over(2, 5, None)],
    ] {
        let refused = store.set_installations(&dpu("999"), &bad).await;
        assert!(
            matches!(refused, Err(roomer_storage::StoreError::Layout(_))),
            "{refused:?}"
        );
    }
    assert_eq!(
        count(store, ROOM_B, Some(10)).await,
        roomer_occupancy::reference::count_at(&layout, &events, ROOM_B, t(10))
    );
}

pub async fn the_layout_can_be_edited_piece_by_piece(store: &dyn Store) {
    use roomer_storage::{InUse, Missing, StoreError};
    store.apply_layout(&building()).await.unwrap();
    // A building with a time zone; Space A becomes a room in it, with a capacity.
    let hq = Space {
        time_zone: Some(chrono_tz::Europe::Paris),
        ..Space::new(10, "HQ")
    };
    assert!(store.put_space(&hq).await.unwrap());
    assert!(!store.put_space(&hq).await.unwrap(), "idempotent");
    let room_a = Space {
        parent: Some(10),
        capacity: Some(12),
        ..Space::new(ROOM_A, "Space A")
    };
    store.put_space(&room_a).await.unwrap();
    let spaces = store.spaces(&Page::all()).await.unwrap();
    let stored: Vec<&Space> = spaces.iter().map(|s| &s.space).collect();
    assert!(
        stored.contains(&&room_a) && stored.contains(&&hq),
        "{stored:?}"
    );
    // One page at a time, by id.
    let first = store
        .spaces(&Page {
            after: None,
            limit: 2,
        })
        .await
        .unwrap();
    let rest = store
        .spaces(&Page {
            after: Some(first[1].space.id),
            limit: 10,
        })
        .await
        .unwrap();
    let ids: Vec<i64> = first.iter().chain(&rest).map(|s| s.space.id).collect();
    assert_eq!(ids, [OUTSIDE, ROOM_A, ROOM_B, 10]);
    // One space, as listed; and the chain its settings come from.
    let listed = spaces.iter().find(|s| s.space.id == ROOM_A).cloned();
    assert_eq!(store.space(ROOM_A).await.unwrap(), listed);
    assert_eq!(store.space(99).await.unwrap(), None);
    let mut chain = store.space_chain(ROOM_A).await.unwrap();
    chain.sort_by_key(|s| s.id);
    assert_eq!(chain, [room_a.clone(), hq.clone()]);
    assert!(store.space_chain(99).await.unwrap().is_empty());

    // What would dangle or loop is refused, and changes nothing.
    let orphan = Space {
        parent: Some(99),
        ..Space::new(11, "Orphan")
    };
    assert!(matches!(
        store.put_space(&orphan).await,
        Err(StoreError::Layout(_))
    ));
    let looped = Space {
        parent: Some(ROOM_A),
        ..hq.clone()
    };
    assert!(matches!(
        store.put_space(&looped).await,
        Err(StoreError::Layout(_))
    ));
    assert!(matches!(
        store.delete_space(ROOM_B).await,
        Err(StoreError::InUse(InUse::SideOfDoorway {
            space: ROOM_B,
            ..
        }))
    ));
    assert!(matches!(
        store.delete_space(10).await,
        Err(StoreError::InUse(InUse::Parent {
            space: 10,
            child: ROOM_A
        }))
    ));
    assert!(matches!(
        store.delete_space(OUTSIDE).await,
        Err(StoreError::InUse(InUse::Outside))
    ));
    assert!(matches!(
        store.delete_space(77).await,
        Err(StoreError::NotFound(Missing::Space(77)))
    ));
    assert!(matches!(
        store.delete_doorway(2).await,
        Err(StoreError::InUse(InUse::Installed(2)))
    ));
    assert!(matches!(
        store.delete_doorway(77).await,
        Err(StoreError::NotFound(Missing::Doorway(77)))
    ));
    let same_sides = Doorway {
        id: 3,
        name: "Loop".into(),
        exiting_to: ROOM_A,
        entering_to: ROOM_A,
    };
    assert!(matches!(
        store.put_doorway(&same_sides).await,
        Err(StoreError::Layout(_))
    ));

    // Turning a doorway around moves its crossings.
    store.ingest(&[crossing("423", 1, 1)]).await.unwrap();
    assert_eq!(count(store, ROOM_A, None).await, 1);
    let turned = Doorway {
        id: 2,
        name: "Doorway Z".into(),
        exiting_to: ROOM_A,
        entering_to: ROOM_B,
    };
    let report = store.put_doorway(&turned).await.unwrap();
    assert_eq!(report.reattributed, 1);
    assert_eq!(
        (
            count(store, ROOM_A, None).await,
            count(store, ROOM_B, None).await
        ),
        (0, 1)
    );
    assert_eq!(store.doorways(&Page::all()).await.unwrap()[1], turned);

    // Forgetting DPU 423 keeps its crossing, pending; the doorway can then go.
    store.delete_dpu(&dpu("423")).await.unwrap();
    assert_eq!(count(store, ROOM_B, None).await, 0);
    assert_eq!(store.totals().await.unwrap().pending, 1);
    assert!(store.installations(&dpu("423")).await.unwrap().is_empty());
    store.delete_doorway(2).await.unwrap();
    assert!(matches!(
        store.delete_dpu(&dpu("423")).await,
        Err(StoreError::NotFound(Missing::Dpu(d))) if d == dpu("423")
    ));
    // And Space B, now on no doorway, with it.
    store.delete_space(ROOM_B).await.unwrap();
    assert_eq!(store.count_at(ROOM_B, None).await.unwrap(), None);
}

pub async fn a_stretch_of_series_reads_back_for_history(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    store
        .ingest(&[
            crossing("283", 1, 1),
            crossing("283", 2, 1),
            crossing("423", 3, -1), // A → B
            crossing("283", 5, -1),
        ])
        .await
        .unwrap();
    let series = store.series(ROOM_A, t(2), t(5)).await.unwrap().unwrap();
    assert_eq!(series.carried_in, 1, "after minute 1");
    let points: Vec<(Timestamp, bool, i64)> = series
        .points
        .iter()
        .map(|p| (p.ts, p.arrival, p.count))
        .collect();
    assert_eq!(
        points,
        [(t(2), true, 2), (t(3), false, 1)],
        "[2, 5): 5 excluded"
    );
    let b = store.series(ROOM_B, t(0), t(10)).await.unwrap().unwrap();
    assert_eq!((b.carried_in, b.points.len()), (0, 1));
    assert!(b.points[0].arrival);
    assert_eq!(store.series(77, t(0), t(10)).await.unwrap(), None);
}

pub async fn changing_a_daily_reset_recounts_history(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    // t(m) is 08:00 UTC + m minutes.
    store
        .ingest(&[
            crossing("283", 1, 1),
            crossing("283", 2, 1),
            crossing("283", 30, 1),
        ])
        .await
        .unwrap();
    assert_eq!(count(store, ROOM_A, Some(30)).await, 3);
    let with_reset = |at: &str| Space {
        daily_reset: Some(at.parse().unwrap()),
        ..Space::new(ROOM_A, "Space A")
    };
    store.put_space(&with_reset("08:10")).await.unwrap();
    assert_eq!(count(store, ROOM_A, Some(9)).await, 2);
    assert_eq!(count(store, ROOM_A, Some(10)).await, 0, "the reset");
    assert_eq!(
        count(store, ROOM_A, Some(30)).await,
        1,
        "recounted after it"
    );
    store.put_space(&with_reset("08:45")).await.unwrap();
    assert_eq!(
        count(store, ROOM_A, Some(30)).await,
        3,
        "moved past the crossings"
    );
    assert_eq!(count(store, ROOM_A, Some(45)).await, 0);
    // Late crossings before the reset change nothing after it.
    store.ingest(&[crossing("283", 40, 1)]).await.unwrap();
    assert_eq!(
        (
            count(store, ROOM_A, Some(44)).await,
            count(store, ROOM_A, Some(46)).await
        ),
        (4, 0)
    );
    let series = store.series(ROOM_A, t(0), t(60)).await.unwrap().unwrap();
    let counts: Vec<i64> = series.points.iter().map(|p| p.count).collect();
    assert_eq!(counts, [1, 2, 3, 4]);
    // The zone comes from the parent: 09:50 in Paris (CET) is 08:50 UTC.
    let campus = Space {
        time_zone: Some(chrono_tz::Europe::Paris),
        ..Space::new(10, "Campus")
    };
    store.put_space(&campus).await.unwrap();
    let in_paris = Space {
        parent: Some(10),
        ..with_reset("09:50")
    };
    store.put_space(&in_paris).await.unwrap();
    assert_eq!(
        (
            count(store, ROOM_A, Some(49)).await,
            count(store, ROOM_A, Some(50)).await
        ),
        (4, 0)
    );
}

pub async fn tokens_are_kept_by_hash_listed_and_revoked(store: &dyn Store) {
    use roomer_storage::{Role, TokenSelector};
    let (admin, reader) = (
        "a".repeat(64),
        format!("{}{}", "b".repeat(8), "c".repeat(56)),
    );
    store
        .create_token(&admin, Role::Admin, "ops")
        .await
        .unwrap();
    store
        .create_token(&reader, Role::Read, "wall display")
        .await
        .unwrap();
    assert_eq!(store.token_role(&admin).await.unwrap(), Some(Role::Admin));
    assert_eq!(store.token_role(&reader).await.unwrap(), Some(Role::Read));
    assert_eq!(store.token_role(&"d".repeat(64)).await.unwrap(), None);
    let listed = store.tokens().await.unwrap();
    let ids: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str()))
        .collect();
    assert_eq!(ids, [("aaaaaaaa", "ops"), ("bbbbbbbb", "wall display")]);
    assert!(
        store
            .revoke_tokens(&TokenSelector::Id("bbb".into()))
            .await
            .is_err(),
        "too short to name one token"
    );
    let by_id = store
        .revoke_tokens(&TokenSelector::Id("BBBBBBBB".into()))
        .await;
    assert_eq!(by_id.unwrap(), 1);
    let by_name = store
        .revoke_tokens(&TokenSelector::Name("ops".into()))
        .await;
    assert_eq!(by_name.unwrap(), 1);
    assert!(store.tokens().await.unwrap().is_empty());
    assert_eq!(store.token_role(&admin).await.unwrap(), None);
}
