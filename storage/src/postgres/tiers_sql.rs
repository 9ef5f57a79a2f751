//! PostgreSQL: the entries and tiered summaries of a space's count series (`crate::tiers`).
//! Lists of bucket starts travel as arrays; every scan of `space_counts` also gets the time
//! range it covers, so that on TimescaleDB only the chunks in range are searched.

use crate::engine::Result;
use crate::tiers::{columns, from_columns, tier_of};
use crate::StoreError;
use occupancy::effect::Effect;
use occupancy::series::{EntryKey, Rank};
use occupancy::tiers::Tier;
use occupancy::{DpuId, SpaceId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{Executor, Postgres, QueryBuilder, Row};

const EFFECT_COLUMNS: &str =
    "count_floor, count_shift, low_floor, low_shift, high_floor, high_shift, entrances, exits";

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

fn entry_key(row: &PgRow) -> Result<EntryKey> {
    let rank: i16 = row.get(1);
    Ok(EntryKey {
        ts: row.get(0),
        rank: Rank::from_i16(rank).ok_or_else(|| corrupt(format!("rank {rank}")))?,
        dpu: DpuId::new(row.get::<String, _>(2)).map_err(|e| corrupt(e.to_string()))?,
        copy: row.get::<i32, _>(3) as u32,
    })
}

/// A summary's start and columns, from column `first` on.
fn tier_row_at(row: &PgRow, first: usize) -> (Timestamp, Effect) {
    let mut c = [0i64; 8];
    for (i, value) in c.iter_mut().enumerate() {
        *value = row.get(first + 1 + i);
    }
    (row.get(first), from_columns(c))
}

fn tier_row(row: &PgRow) -> (Timestamp, Effect) {
    tier_row_at(row, 0)
}

/// The first instant of the earliest bucket and the end of the latest.
fn span(tier: Tier, starts: &[Timestamp]) -> (Option<Timestamp>, Option<Timestamp>) {
    (
        starts.iter().min().copied(),
        starts.iter().max().map(|&s| tier.end(s)),
    )
}

fn seconds(tier: Tier) -> f64 {
    tier.seconds() as f64
}

/// The entries in `[from, to)`, in key order.
async fn entries_between<'e>(
    db: impl Executor<'e, Database = Postgres>,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<EntryKey>> {
    let rows = sqlx::query(
        "SELECT ts, rank, dpu_id, copy FROM space_counts \
         WHERE space_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, rank, dpu_id, copy",
    )
    .bind(space)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    rows.iter().map(entry_key).collect()
}

/// The entries inside the buckets of `tier` starting at `starts`, in key order.
pub(super) async fn entries_in<'e>(
    db: impl Executor<'e, Database = Postgres>,
    space: SpaceId,
    tier: Tier,
    starts: &[Timestamp],
) -> Result<Vec<EntryKey>> {
    let (first, end) = span(tier, starts);
    if let (true, Some(first), Some(end)) = (crate::tiers::dense(tier, starts), first, end) {
        let entries = entries_between(db, space, first, end).await?;
        return Ok(crate::tiers::within(tier, starts, entries));
    }
    let rows = sqlx::query(
        "SELECT c.ts, c.rank, c.dpu_id, c.copy FROM UNNEST($2::timestamptz[]) AS m(start) \
         JOIN space_counts c ON c.space_id = $1 AND c.ts >= m.start \
          AND c.ts < m.start + make_interval(secs => $3) \
         WHERE c.ts >= $4 AND c.ts < $5 \
         ORDER BY c.ts, c.rank, c.dpu_id, c.copy",
    )
    .bind(space)
    .bind(starts)
    .bind(seconds(tier))
    .bind(first)
    .bind(end)
    .fetch_all(db)
    .await?;
    rows.iter().map(entry_key).collect()
}

/// The summaries of `tier` inside the buckets of `within` starting at `starts`.
pub(super) async fn tier_rows_in<'e>(
    db: impl Executor<'e, Database = Postgres>,
    space: SpaceId,
    tier: Tier,
    within: Tier,
    starts: &[Timestamp],
) -> Result<Vec<(Timestamp, Effect)>> {
    let sql = format!(
        "SELECT t.start, {EFFECT_COLUMNS} FROM UNNEST($2::timestamptz[]) AS m(start) \
         JOIN space_tiers t ON t.space_id = $1 AND t.tier = $3 \
          AND t.start >= m.start AND t.start < m.start + make_interval(secs => $4) \
         ORDER BY t.start"
    );
    let rows = sqlx::query(&sql)
        .bind(space)
        .bind(starts)
        .bind(tier as i16)
        .bind(seconds(within))
        .fetch_all(db)
        .await?;
    Ok(rows.iter().map(tier_row).collect())
}

/// Stores summaries of `tier` (`None` deletes the bucket's).
pub(super) async fn put_tier_rows(
    tx: &mut sqlx::PgConnection,
    space: SpaceId,
    tier: Tier,
    rows: &[(Timestamp, Option<Effect>)],
) -> Result<()> {
    let gone: Vec<Timestamp> = rows
        .iter()
        .filter(|(_, e)| e.is_none())
        .map(|(s, _)| *s)
        .collect();
    if !gone.is_empty() {
        sqlx::query(
            "DELETE FROM space_tiers WHERE space_id = $1 AND tier = $2 AND start = ANY($3)",
        )
        .bind(space)
        .bind(tier as i16)
        .bind(&gone)
        .execute(&mut *tx)
        .await?;
    }
    let kept: Vec<(Timestamp, [i64; 8])> = rows
        .iter()
        .filter_map(|(s, e)| e.as_ref().map(|e| (*s, columns(e))))
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    let column = |i: usize| -> Vec<i64> { kept.iter().map(|(_, c)| c[i]).collect() };
    let starts: Vec<Timestamp> = kept.iter().map(|(s, _)| *s).collect();
    let sql = format!(
        "INSERT INTO space_tiers (space_id, tier, start, {EFFECT_COLUMNS}) \
         SELECT $1, $2, k.* FROM UNNEST($3::timestamptz[], $4::bigint[], $5::bigint[], \
           $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[]) AS k \
         ON CONFLICT (space_id, tier, start) DO UPDATE SET \
           count_floor = EXCLUDED.count_floor, count_shift = EXCLUDED.count_shift, \
           low_floor = EXCLUDED.low_floor, low_shift = EXCLUDED.low_shift, \
           high_floor = EXCLUDED.high_floor, high_shift = EXCLUDED.high_shift, \
           entrances = EXCLUDED.entrances, exits = EXCLUDED.exits"
    );
    let mut query = sqlx::query(&sql).bind(space).bind(tier as i16).bind(starts);
    for i in 0..8 {
        query = query.bind(column(i));
    }
    query.execute(&mut *tx).await?;
    Ok(())
}

pub(super) async fn clear_tiers(tx: &mut sqlx::PgConnection, space: SpaceId) -> Result<()> {
    sqlx::query("DELETE FROM space_tiers WHERE space_id = $1")
        .bind(space)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

pub(super) async fn entry_minutes(
    tx: &mut sqlx::PgConnection,
    space: SpaceId,
) -> Result<Vec<Timestamp>> {
    let rows: Vec<(Timestamp,)> = sqlx::query_as(
        "SELECT DISTINCT to_timestamp(floor(extract(epoch FROM ts) / 60) * 60) \
         FROM space_counts WHERE space_id = $1 ORDER BY 1",
    )
    .bind(space)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}

pub(super) async fn tiers_missing(tx: &mut sqlx::PgConnection) -> Result<bool> {
    let (missing,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM space_counts) AND NOT EXISTS (SELECT 1 FROM space_tiers)",
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(missing)
}

pub(super) async fn spaces_with_entries(tx: &mut sqlx::PgConnection) -> Result<Vec<SpaceId>> {
    let rows: Vec<(SpaceId,)> =
        sqlx::query_as("SELECT DISTINCT space_id FROM space_counts ORDER BY space_id")
            .fetch_all(&mut *tx)
            .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

/// Reads of counts and history over a pool.
pub(super) struct Reader<'a>(pub(super) &'a sqlx::PgPool);

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
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT tier, start, {EFFECT_COLUMNS} FROM space_tiers WHERE space_id = "
        ));
        query.push_bind(space).push(" AND (");
        for (i, (tier, from, to)) in ranges.iter().enumerate() {
            if i > 0 {
                query.push(" OR ");
            }
            query.push("(tier = ").push_bind(*tier as i16);
            if let Some(from) = from {
                query.push(" AND start >= ").push_bind(*from);
            }
            query.push(" AND start < ").push_bind(*to).push(")");
        }
        query.push(") ORDER BY start, tier DESC");
        let rows = query.build().fetch_all(self.0).await?;
        rows.iter()
            .map(|row| {
                let (start, effect) = tier_row_at(row, 1);
                Ok((tier_of(row.get::<i16, _>(0).into())?, start, effect))
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
        let row: Option<(Timestamp,)> = sqlx::query_as(
            "SELECT ts FROM space_counts WHERE space_id = $1 ORDER BY ts DESC LIMIT 1",
        )
        .bind(space)
        .fetch_optional(self.0)
        .await?;
        Ok(row.map(|(ts,)| ts))
    }

    async fn space_chain(&self, space: SpaceId) -> Result<Vec<occupancy::Space>> {
        super::layout_sql::space_chain(&mut *self.0.acquire().await?, space).await
    }
}
