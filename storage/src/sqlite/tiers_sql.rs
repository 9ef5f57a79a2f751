//! SQLite: the entries and tiered summaries of a space's count series (`crate::tiers`).
//! Lists of bucket starts travel as one JSON array, read with `json_each`; `CROSS JOIN`
//! makes SQLite loop over the starts and range-scan the index for each (left to choose, it
//! may scan the space's whole series instead).

use super::{from_micros, micros};
use crate::engine::Result;
use crate::tiers::{columns, from_columns, tier_of};
use crate::StoreError;
use occupancy::effect::Effect;
use occupancy::series::{EntryKey, Rank};
use occupancy::tiers::Tier;
use occupancy::{DpuId, SpaceId, Timestamp};
use sqlx::sqlite::SqliteRow;
use sqlx::{Executor, QueryBuilder, Row, Sqlite};

/// Rows per multi-row statement (11 parameters a row).
const CHUNK: usize = 500;

const EFFECT_COLUMNS: &str =
    "count_floor, count_shift, low_floor, low_shift, high_floor, high_shift, entrances, exits";

fn starts_json(starts: &[Timestamp]) -> String {
    let micros: Vec<String> = starts.iter().map(|&s| micros(s).to_string()).collect();
    format!("[{}]", micros.join(","))
}

fn width_micros(tier: Tier) -> i64 {
    tier.seconds() * 1_000_000
}

fn entry_key(row: &SqliteRow) -> Result<EntryKey> {
    let rank: i16 = row.get(1);
    Ok(EntryKey {
        ts: from_micros(row.get(0))?,
        rank: Rank::from_i16(rank).ok_or_else(|| StoreError::Corrupt(format!("rank {rank}")))?,
        dpu: DpuId::new(row.get::<String, _>(2)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        copy: row.get(3),
    })
}

/// A summary's start and columns, from column `first` on.
fn tier_row_at(row: &SqliteRow, first: usize) -> Result<(Timestamp, Effect)> {
    let mut c = [0i64; 8];
    for (i, value) in c.iter_mut().enumerate() {
        *value = row.get(first + 1 + i);
    }
    Ok((from_micros(row.get(first))?, from_columns(c)))
}

fn tier_row(row: &SqliteRow) -> Result<(Timestamp, Effect)> {
    tier_row_at(row, 0)
}

/// The entries in `[from, to)`, in key order.
async fn entries_between<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<EntryKey>> {
    let rows = sqlx::query(
        "SELECT ts, rank, dpu_id, copy FROM space_counts \
         WHERE space_id = ? AND ts >= ? AND ts < ? ORDER BY ts, rank, dpu_id, copy",
    )
    .bind(space)
    .bind(micros(from))
    .bind(micros(to))
    .fetch_all(db)
    .await?;
    rows.iter().map(entry_key).collect()
}

/// The entries inside the buckets of `tier` starting at `starts`, in key order.
pub(super) async fn entries_in<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    space: SpaceId,
    tier: Tier,
    starts: &[Timestamp],
) -> Result<Vec<EntryKey>> {
    if let (true, Some(&first), Some(&last)) = (
        crate::tiers::dense(tier, starts),
        starts.first(),
        starts.last(),
    ) {
        let entries = entries_between(db, space, first, tier.end(last)).await?;
        return Ok(crate::tiers::within(tier, starts, entries));
    }
    let rows = sqlx::query(
        "SELECT c.ts, c.rank, c.dpu_id, c.copy FROM json_each(?) AS m \
         CROSS JOIN space_counts c ON c.space_id = ? AND c.ts >= m.value AND c.ts < m.value + ? \
         ORDER BY c.ts, c.rank, c.dpu_id, c.copy",
    )
    .bind(starts_json(starts))
    .bind(space)
    .bind(width_micros(tier))
    .fetch_all(db)
    .await?;
    rows.iter().map(entry_key).collect()
}

/// The summaries of `tier` inside the buckets of `within` starting at `starts`.
pub(super) async fn tier_rows_in<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    space: SpaceId,
    tier: Tier,
    within: Tier,
    starts: &[Timestamp],
) -> Result<Vec<(Timestamp, Effect)>> {
    let sql = format!(
        "SELECT t.start, {EFFECT_COLUMNS} FROM json_each(?) AS m \
         CROSS JOIN space_tiers t ON t.space_id = ? AND t.tier = ? \
          AND t.start >= m.value AND t.start < m.value + ? ORDER BY t.start"
    );
    let rows = sqlx::query(&sql)
        .bind(starts_json(starts))
        .bind(space)
        .bind(tier as i64)
        .bind(width_micros(within))
        .fetch_all(db)
        .await?;
    rows.iter().map(tier_row).collect()
}

/// Stores summaries of `tier` (`None` deletes the bucket's).
pub(super) async fn put_tier_rows(
    tx: &mut sqlx::SqliteConnection,
    space: SpaceId,
    tier: Tier,
    rows: &[(Timestamp, Option<Effect>)],
) -> Result<()> {
    let (kept, gone): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, e)| e.is_some());
    if !gone.is_empty() {
        let starts: Vec<Timestamp> = gone.iter().map(|(s, _)| *s).collect();
        sqlx::query(
            "DELETE FROM space_tiers WHERE space_id = ? AND tier = ? \
             AND start IN (SELECT value FROM json_each(?))",
        )
        .bind(space)
        .bind(tier as i64)
        .bind(starts_json(&starts))
        .execute(&mut *tx)
        .await?;
    }
    for chunk in kept.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "INSERT OR REPLACE INTO space_tiers (space_id, tier, start, {EFFECT_COLUMNS}) "
        ));
        query.push_values(chunk, |mut row, (start, effect)| {
            row.push_bind(space)
                .push_bind(tier as i64)
                .push_bind(micros(*start));
            let effect = effect.as_ref().expect("partitioned on is_some");
            for value in columns(effect) {
                row.push_bind(value);
            }
        });
        query.build().execute(&mut *tx).await?;
    }
    Ok(())
}

pub(super) async fn clear_tiers(tx: &mut sqlx::SqliteConnection, space: SpaceId) -> Result<()> {
    sqlx::query("DELETE FROM space_tiers WHERE space_id = ?")
        .bind(space)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(super) async fn entry_minutes(
    tx: &mut sqlx::SqliteConnection,
    space: SpaceId,
) -> Result<Vec<Timestamp>> {
    let minute = width_micros(Tier::Minute);
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT ts - ((ts % ?1) + ?1) % ?1 FROM space_counts WHERE space_id = ?2 ORDER BY 1",
    )
    .bind(minute)
    .bind(space)
    .fetch_all(&mut *tx)
    .await?;
    rows.into_iter().map(|(m,)| from_micros(m)).collect()
}

pub(super) async fn tiers_missing(tx: &mut sqlx::SqliteConnection) -> Result<bool> {
    let (missing,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM space_counts) AND NOT EXISTS (SELECT 1 FROM space_tiers)",
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(missing)
}

pub(super) async fn spaces_with_entries(tx: &mut sqlx::SqliteConnection) -> Result<Vec<SpaceId>> {
    let rows: Vec<(SpaceId,)> =
        sqlx::query_as("SELECT DISTINCT space_id FROM space_counts ORDER BY space_id")
            .fetch_all(&mut *tx)
            .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

/// Reads of counts and history over a pool.
pub(super) struct Reader<'a>(pub(super) &'a sqlx::SqlitePool);

#[async_trait::async_trait]
impl crate::tiers::TierRead for Reader<'_> {
    async fn tier_ranges(
        &self,
        space: SpaceId,
        ranges: &[(Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(Tier, Timestamp, Effect)>> {
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT tier, start, {EFFECT_COLUMNS} FROM space_tiers WHERE space_id = "
        ));
        query.push_bind(space).push(" AND (");
        for (i, (tier, from, to)) in ranges.iter().enumerate() {
            if i > 0 {
                query.push(" OR ");
            }
            query
                .push("(tier = ")
                .push_bind(*tier as i64)
                .push(" AND start >= ")
                .push_bind(from.map_or(i64::MIN, micros))
                .push(" AND start < ")
                .push_bind(micros(*to))
                .push(")");
        }
        query.push(") ORDER BY start, tier DESC");
        let rows = query.build().fetch_all(self.0).await?;
        rows.iter()
            .map(|row| {
                let (start, effect) = tier_row_at(row, 1)?;
                Ok((tier_of(row.get(0))?, start, effect))
            })
            .collect()
    }

    async fn entries_between(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<EntryKey>> {
        entries_between(self.0, space, from, to).await
    }

    async fn last_entry(&self, space: SpaceId) -> Result<Option<Timestamp>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT ts FROM space_counts WHERE space_id = ? ORDER BY ts DESC LIMIT 1",
        )
        .bind(space)
        .fetch_optional(self.0)
        .await?;
        row.map(|(ts,)| from_micros(ts)).transpose()
    }

    async fn space_chain(&self, space: SpaceId) -> Result<Vec<occupancy::Space>> {
        super::layout_sql::space_chain(&mut *self.0.acquire().await?, space).await
    }
}
