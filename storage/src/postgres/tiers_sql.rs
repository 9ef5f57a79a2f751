//! PostgreSQL: the tiered summaries of the count series (`crate::tiers`), and the reads that
//! fold them. Lists travel as arrays (`UNNEST`).

use super::entries_sql;
use crate::engine::Result;
use crate::tiers::{columns, from_columns, start_ranges, tier_of, CountStart, Span, DENSE_MINUTE};
use roomer_occupancy::effect::Effect;
use roomer_occupancy::series::{EntryKey, Rank, Step};
use roomer_occupancy::tiers::Tier;
use roomer_occupancy::{SpaceId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row};

const EFFECT_COLUMNS: &str =
    "count_floor, count_shift, low_floor, low_shift, high_floor, high_shift, entrances, exits";

/// A summary's start and columns, from column `first` on.
fn tier_row_at(row: &PgRow, first: usize) -> (Timestamp, Effect) {
    let mut c = [0i64; 8];
    for (i, value) in c.iter_mut().enumerate() {
        *value = row.get(first + 1 + i);
    }
    (row.get(first), from_columns(c))
}

/// The summaries of `tier` that start inside the spans, ordered by space and start.
pub(super) async fn tier_rows_in(
    tx: &mut sqlx::PgConnection,
    tier: Tier,
    spans: &[Span],
) -> Result<Vec<(SpaceId, Timestamp, Effect)>> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let (spaces, froms, tos) = entries_sql::span_columns(spans);
    // One index range scan per span, as in `entries_sql::steps_within`.
    let sql = format!(
        "SELECT r.space_id, t.start, {EFFECT_COLUMNS} \
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS r(space_id, lo, hi) \
         CROSS JOIN LATERAL (SELECT * FROM space_tiers t WHERE t.space_id = r.space_id \
              AND t.tier = $4 AND t.start >= r.lo AND t.start < r.hi OFFSET 0) AS t \
         ORDER BY r.space_id, t.start"
    );
    let rows = sqlx::query(&sql)
        .bind(spaces)
        .bind(froms)
        .bind(tos)
        .bind(tier as i16)
        .fetch_all(tx)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let (start, effect) = tier_row_at(row, 1);
            (row.get(0), start, effect)
        })
        .collect())
}

/// Stores summaries of `tier` (`None` deletes the bucket's).
pub(super) async fn put_tier_rows(
    tx: &mut sqlx::PgConnection,
    tier: Tier,
    rows: &[(SpaceId, Timestamp, Option<Effect>)],
) -> Result<()> {
    let (gone_spaces, gone_starts): (Vec<SpaceId>, Vec<Timestamp>) = rows
        .iter()
        .filter(|(_, _, e)| e.is_none())
        .map(|(space, s, _)| (*space, *s))
        .unzip();
    if !gone_spaces.is_empty() {
        sqlx::query(
            "DELETE FROM space_tiers t USING UNNEST($1::bigint[], $2::timestamptz[]) AS g(space_id, start) \
             WHERE t.space_id = g.space_id AND t.tier = $3 AND t.start = g.start",
        )
        .bind(gone_spaces)
        .bind(gone_starts)
        .bind(tier as i16)
        .execute(&mut *tx)
        .await?;
    }
    let kept: Vec<(SpaceId, Timestamp, [i64; 8])> = rows
        .iter()
        .filter_map(|(space, s, e)| e.as_ref().map(|e| (*space, *s, columns(e))))
        .collect();
    if kept.is_empty() {
        return Ok(());
    }
    let column = |i: usize| -> Vec<i64> { kept.iter().map(|(_, _, c)| c[i]).collect() };
    let spaces: Vec<SpaceId> = kept.iter().map(|(space, _, _)| *space).collect();
    let starts: Vec<Timestamp> = kept.iter().map(|(_, s, _)| *s).collect();
    let sql = format!(
        "INSERT INTO space_tiers (space_id, start, {EFFECT_COLUMNS}, tier) \
         SELECT k.*, $11 FROM UNNEST($1::bigint[], $2::timestamptz[], $3::bigint[], $4::bigint[], \
           $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[]) AS k \
         ON CONFLICT (space_id, tier, start) DO UPDATE SET \
           count_floor = EXCLUDED.count_floor, count_shift = EXCLUDED.count_shift, \
           low_floor = EXCLUDED.low_floor, low_shift = EXCLUDED.low_shift, \
           high_floor = EXCLUDED.high_floor, high_shift = EXCLUDED.high_shift, \
           entrances = EXCLUDED.entrances, exits = EXCLUDED.exits"
    );
    let mut query = sqlx::query(&sql).bind(spaces).bind(starts);
    for i in 0..8 {
        query = query.bind(column(i));
    }
    query.bind(tier as i16).execute(&mut *tx).await?;
    Ok(())
}

pub(super) async fn clear_tiers(tx: &mut sqlx::PgConnection, space: SpaceId) -> Result<()> {
    for table in ["space_tiers", "tier_pending"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE space_id = $1"))
            .bind(space)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub(super) async fn tiers_missing(tx: &mut sqlx::PgConnection) -> Result<bool> {
    let (missing,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM space_counts) AND NOT EXISTS (SELECT 1 FROM space_tiers) \
         AND NOT EXISTS (SELECT 1 FROM tier_pending)",
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

/// The effect columns of a row of [`TierRead::count_start`] that is not a summary.
const NULLS: &str = "NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, \
                     NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint";

/// Appends `<space> AND (<ranges>)` to a query of `space_tiers` that ends in `space_id = `.
fn push_ranges(
    query: &mut QueryBuilder<'_, Postgres>,
    space: SpaceId,
    ranges: &[(Tier, Option<Timestamp>, Timestamp)],
) {
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
    query.push(")");
}

/// Reads of counts and history over a pool.
#[derive(Clone, Debug)]
pub(super) struct Reader(pub(super) sqlx::PgPool);

#[async_trait::async_trait]
impl crate::tiers::TierRead for Reader {
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
        push_ranges(&mut query, space, ranges);
        query.push(" ORDER BY start, tier DESC");
        let rows = query.build().fetch_all(&self.0).await?;
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
        limit: Option<usize>,
    ) -> Result<Vec<EntryKey>> {
        entries_sql::between(&self.0, space, from, to, limit).await
    }

    async fn space_chain(&self, space: SpaceId) -> Result<Vec<roomer_occupancy::Space>> {
        super::layout_sql::space_chain(&mut *self.0.acquire().await?, space).await
    }

    async fn pending_between(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Timestamp>> {
        entries_sql::pending_between(&self.0, space, from, to).await
    }

    async fn last_entries(&self, spaces: &[SpaceId]) -> Result<Vec<Option<Timestamp>>> {
        let rows: Vec<(Option<Timestamp>,)> = sqlx::query_as(
            "SELECT (SELECT c.ts FROM space_counts c WHERE c.space_id = u.s \
                     ORDER BY c.ts DESC LIMIT 1) \
             FROM UNNEST($1::bigint[]) WITH ORDINALITY AS u(s, i) ORDER BY u.i",
        )
        .bind(spaces)
        .fetch_all(&self.0)
        .await?;
        Ok(rows.into_iter().map(|(ts,)| ts).collect())
    }

    async fn pending_before_each(
        &self,
        before: &[(SpaceId, Timestamp)],
    ) -> Result<Vec<(SpaceId, Timestamp)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT p.space_id, p.minute \
             FROM UNNEST($1::bigint[], $2::timestamptz[]) AS u(s, m) \
             JOIN tier_pending p ON p.space_id = u.s AND p.minute < u.m \
             ORDER BY p.space_id, p.minute",
        )
        .bind(before.iter().map(|(s, _)| *s).collect::<Vec<_>>())
        .bind(before.iter().map(|(_, t)| *t).collect::<Vec<_>>())
        .fetch_all(&self.0)
        .await?)
    }

    async fn tier_ranges_each(
        &self,
        ranges: &[(SpaceId, Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(SpaceId, Tier, Timestamp, Effect)>> {
        let rows = sqlx::query(&format!(
            "SELECT t.space_id, t.tier, t.start, {EFFECT_COLUMNS} \
             FROM UNNEST($1::bigint[], $2::smallint[], $3::timestamptz[], $4::timestamptz[]) \
                  AS u(s, tier, lo, hi) \
             JOIN space_tiers t ON t.space_id = u.s AND t.tier = u.tier \
              AND t.start >= coalesce(u.lo, '-infinity') AND t.start < u.hi \
             ORDER BY t.space_id, t.start, t.tier DESC"
        ))
        .bind(ranges.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(ranges.iter().map(|r| r.1 as i16).collect::<Vec<_>>())
        .bind(ranges.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(ranges.iter().map(|r| r.3).collect::<Vec<_>>())
        .fetch_all(&self.0)
        .await?;
        rows.iter()
            .map(|row| {
                let (start, effect) = tier_row_at(row, 2);
                Ok((
                    row.get(0),
                    tier_of(row.get::<i16, _>(1).into())?,
                    start,
                    effect,
                ))
            })
            .collect()
    }

    async fn steps_each(&self, spans: &[Span]) -> Result<Vec<(SpaceId, Step)>> {
        entries_sql::steps_within(&mut *self.0.acquire().await?, spans).await
    }

    async fn first_steps_each(&self, spans: &[Span], limit: usize) -> Result<Vec<(SpaceId, Step)>> {
        entries_sql::first_steps_within(&mut *self.0.acquire().await?, spans, limit).await
    }

    /// One statement, so one round trip on one connection, and one snapshot: its notes and
    /// summaries agree (see `tiers::count`).
    async fn count_start(&self, space: SpaceId, t: Timestamp) -> Result<CountStart> {
        let minute = Tier::Minute.floor(t);
        let after = t + chrono::TimeDelta::microseconds(1);
        let mut query = QueryBuilder::<Postgres>::new(format!(
            "SELECT 0::smallint, NULL::smallint, minute, {NULLS} FROM \
             (SELECT DISTINCT minute FROM tier_pending WHERE space_id = "
        ));
        // Distinct: under a backlog every batch notes a busy minute again.
        query.push_bind(space).push(" AND minute < ");
        query.push_bind(Tier::Minute.end(minute));
        query.push(format!(
            ") AS p UNION ALL SELECT 1::smallint, tier, start, {EFFECT_COLUMNS} FROM space_tiers WHERE space_id = "
        ));
        push_ranges(&mut query, space, &start_ranges(t));
        query.push(format!(
            " UNION ALL SELECT 2::smallint, rank, ts, {NULLS} FROM (SELECT ts, rank FROM space_counts \
             WHERE space_id = "
        ));
        query.push_bind(space).push(" AND ts >= ").push_bind(minute);
        query.push(" AND ts < ").push_bind(after);
        query.push(format!(
            " ORDER BY ts, rank, dpu_id, copy LIMIT {}) AS m",
            DENSE_MINUTE + 1
        ));
        query.push(format!(
            " UNION ALL SELECT 3::smallint, rank, ts, {NULLS} FROM space_counts WHERE space_id = "
        ));
        query.push_bind(space).push(" AND ts >= ");
        query.push_bind(Tier::Second.floor(t)).push(" AND ts < ");
        query.push_bind(after);
        let mut start = CountStart::default();
        for row in query.build().fetch_all(&self.0).await? {
            let kind: i16 = row.get(0);
            let ts: Timestamp = row.get(2);
            match kind {
                0 => start.noted.push(ts),
                1 => {
                    let (start_at, effect) = tier_row_at(&row, 2);
                    let tier = tier_of(row.get::<i16, _>(1).into())?;
                    start.summaries.push((tier, start_at, effect));
                }
                _ => {
                    let rank: i16 = row.get(1);
                    let rank = Rank::from_i16(rank)
                        .ok_or_else(|| entries_sql::corrupt(format!("rank {rank}")))?;
                    let step = Step { ts, rank };
                    if kind == 2 {
                        start.minute.push(step);
                    } else {
                        start.second.push(step);
                    }
                }
            }
        }
        Ok(start)
    }
}
