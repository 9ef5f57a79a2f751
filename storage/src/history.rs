//! A space's history in buckets, from whichever of the two sources can answer: the rollups
//! (TimescaleDB's hourly and daily continuous aggregates) where the buckets lie on their
//! boundaries and the rollups are up to date, the raw count series everywhere else. Both
//! give the same buckets (`occupancy::rollup` says why; the TimescaleDB tests check it).

use crate::{Store, StoreError};
use occupancy::history::{buckets, Bucket};
use occupancy::reset::{self, DailyReset};
use occupancy::rollup::{self, Grain};
use occupancy::{Space, SpaceId, Timestamp};

/// Where history may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The rollups wherever they can answer, the raw series elsewhere (what the API does).
    Rollups,
    /// The raw series only (to compare with).
    Raw,
}

/// Buckets, and how many of the first ones were made from rollups.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub buckets: Vec<Bucket>,
    pub from_rollups: usize,
}

/// The buckets `bounds` (consecutive, as `occupancy::history::boundaries` makes them) of
/// `space`, given every space of the building (for its time zone, capacity and daily reset);
/// `None` if the space does not exist.
///
/// A space that resets daily: the count carried in is 0 if a reset came after its last
/// crossing, and each reset inside the range brings the count to 0 at its instant, on both
/// paths.
pub async fn history(
    store: &dyn Store,
    space: SpaceId,
    spaces: &[Space],
    bounds: &[(Timestamp, Timestamp)],
    source: Source,
) -> Result<Option<History>, StoreError> {
    let (Some(&(first, _)), Some(&(_, last))) = (bounds.first(), bounds.last()) else {
        return Ok(Some(History {
            buckets: Vec::new(),
            from_rollups: 0,
        }));
    };
    let capacity = spaces
        .iter()
        .find(|s| s.id == space)
        .and_then(|s| s.capacity);
    let rule = DailyReset::of(space, spaces);
    let resets = rule
        .as_ref()
        .map(|r| r.instants(first, last))
        .unwrap_or_default();
    let carried = |series: &crate::Series| {
        let just_before = first - chrono::TimeDelta::microseconds(1);
        reset::apply(
            rule.as_ref(),
            series.carried_in,
            series.carried_at,
            just_before,
        )
    };
    let rolled = match (source, Grain::for_bounds(bounds)) {
        (Source::Rollups, Some(grain)) => store.rollups(space, grain, first, last).await?,
        _ => None,
    };
    let Some(rolled) = rolled else {
        let Some(series) = store.series(space, first, last).await? else {
            return Ok(None);
        };
        return Ok(Some(History {
            buckets: buckets(bounds, carried(&series), &series.points, capacity, &resets),
            from_rollups: 0,
        }));
    };
    let Some(head) = store.series(space, first, first).await? else {
        return Ok(None);
    };
    let split = bounds.partition_point(|b| b.1 <= rolled.clean_until);
    let mut answered = rollup::buckets(
        &bounds[..split],
        carried(&head),
        &rolled.summaries,
        capacity,
        &resets,
    );
    if split < bounds.len() {
        let from = bounds[split].0;
        let carried_in = answered.last().map_or(carried(&head), |b| b.count);
        let Some(series) = store.series(space, from, last).await? else {
            return Ok(None);
        };
        // The rollup part went through the resets before `from`.
        let later: Vec<Timestamp> = resets.into_iter().filter(|r| *r >= from).collect();
        answered.extend(buckets(
            &bounds[split..],
            carried_in,
            &series.points,
            capacity,
            &later,
        ));
    }
    Ok(Some(History {
        buckets: answered,
        from_rollups: split,
    }))
}
