//! A space's history in buckets, folded from its tiered summaries (`roomer_occupancy::tiers`: the
//! hourly and daily summaries are rollups as they stand, and any bucket on whole minutes is a
//! fold of the largest summaries inside it), or, to compare with, from the raw series walked
//! entry by entry. Both give the same buckets (the property tests check it).

use crate::{Store, StoreError};
use roomer_occupancy::history::{buckets, Bucket};
use roomer_occupancy::reset::{self, DailyReset};
use roomer_occupancy::{Space, SpaceId, Timestamp};

/// Where history may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The tiered summaries (what the API does).
    Summaries,
    /// The raw series only (to compare with).
    Raw,
}

/// Buckets, and how many of them were made from summaries.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub buckets: Vec<Bucket>,
    pub from_summaries: usize,
}

/// The buckets `bounds` (consecutive, as `roomer_occupancy::history::boundaries` makes them) of
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
            from_summaries: 0,
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
    if source == Source::Summaries {
        let Some(buckets) = store.buckets(space, bounds).await? else {
            return Ok(None);
        };
        return Ok(Some(History {
            from_summaries: buckets.len(),
            buckets,
        }));
    }
    let Some(series) = store.series(space, first, last).await? else {
        return Ok(None);
    };
    Ok(Some(History {
        buckets: buckets(bounds, carried(&series), &series.points, capacity, &resets),
        from_summaries: 0,
    }))
}
