//! SQLite: the tiered summaries of the count series (`crate::tiers`), and the reads that
//! fold them. Lists to join against travel as JSON (see `entries_sql`).

use super::entries_sql;
use super::{from_micros, micros};
use crate::engine::Result;
use crate::tiers::{columns, from_columns, tier_of, Span};
use roomer_occupancy::effect::Effect;
use roomer_occupancy::series::{EntryKey, Step};
use roomer_occupancy::tiers::Tier;
use roomer_occupancy::{SpaceId, Timestamp};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

/// Rows per multi-row statement (11 parameters a row).
const CHUNK: usize = 500;

const EFFECT_COLUMNS: &str =
    "count_floor, count_shift, low_floor, low_shift, high_floor, high_shift, entrances, exits";

/// A summary's start and columns, from column `first` on.
fn tier_row_at(row: &SqliteRow, first: usize) -> Result<(Timestamp, Effect)> {
    let mut c = [0i64; 8];
    for (i, value) in c.iter_mut().enumerate() {
        *value = row.get(first + 1 + i);
    }
    Ok((from_micros(row.get(first))?, from_columns(c)))
}

/// The summaries of `tier` that start inside the spans, ordered by space and start.
pub(super) async fn tier_rows_in(
    tx: &mut sqlx::SqliteConnection,
    tier: Tier,
    spans: &[Span],
) -> Result<Vec<(SpaceId, Timestamp, Effect)>> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    // One JSON row, as `entries_sql::steps_within` does: an hour's 60 minute summaries per
    // span would otherwise cross from sqlx's database thread one row at a time.
    let sql = format!(
        "SELECT json_group_array(json_array(space_id, start, {EFFECT_COLUMNS})) FROM ( \
           SELECT t.space_id, t.start, {EFFECT_COLUMNS} FROM json_each(?) AS r \
           CROSS JOIN space_tiers t ON t.space_id = json_extract(r.value, '$[0]') AND t.tier = ? \
            AND t.start >= json_extract(r.value, '$[1]') \
            AND t.start < json_extract(r.value, '$[2]') \
           ORDER BY t.space_id, t.start)"
    );
    let (json,): (Option<String>,) = sqlx::query_as(&sql)
        .bind(entries_sql::spans_json(spans))
        .bind(tier as i64)
        .fetch_one(tx)
        .await?;
    type Columns = (SpaceId, i64, i64, i64, i64, i64, i64, i64, i64, i64);
    let rows: Vec<Columns> = serde_json::from_str(json.as_deref().unwrap_or("[]"))
        .map_err(|e| crate::StoreError::Corrupt(format!("summaries as JSON: {e}")))?;
    rows.into_iter()
        .map(|(space, start, c0, c1, c2, c3, c4, c5, c6, c7)| {
            let effect = from_columns([c0, c1, c2, c3, c4, c5, c6, c7]);
            Ok((space, from_micros(start)?, effect))
        })
        .collect()
}

/// Stores summaries of `tier` (`None` deletes the bucket's).
pub(super) async fn put_tier_rows(
    tx: &mut sqlx::SqliteConnection,
    tier: Tier,
    rows: &[(SpaceId, Timestamp, Option<Effect>)],
) -> Result<()> {
    let (kept, gone): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, _, e)| e.is_some());
    for chunk in gone.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new("DELETE FROM space_tiers WHERE tier = ");
        query
            .push_bind(tier as i64)
            .push(" AND (space_id, start) IN (");
        query.push_values(chunk, |mut row, (space, start, _)| {
            row.push_bind(*space).push_bind(micros(*start));
        });
        query.push(")");
        query.build().execute(&mut *tx).await?;
    }
    for chunk in kept.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "INSERT OR REPLACE INTO space_tiers (space_id, tier, start, {EFFECT_COLUMNS}) "
        ));
        query.push_values(chunk, |mut row, (space, start, effect)| {
            row.push_bind(*space)
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
    for table in ["space_tiers", "tier_pending"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE space_id = ?"))
            .bind(space)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

pub(super) async fn tiers_missing(tx: &mut sqlx::SqliteConnection) -> Result<bool> {
    let (missing,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM space_counts) AND NOT EXISTS (SELECT 1 FROM space_tiers) \
         AND NOT EXISTS (SELECT 1 FROM tier_pending)",
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

/// The summaries in each range, as one indexed range read per range. Written as one
/// condition with OR, SQLite reads every summary of the space instead (its plan: "SEARCH
/// space_tiers USING PRIMARY KEY (space_id=?)"), so a count took longer the longer the history.
fn ranges_query(
    space: SpaceId,
    ranges: &[(Tier, Option<Timestamp>, Timestamp)],
) -> QueryBuilder<'static, Sqlite> {
    let mut query = QueryBuilder::<Sqlite>::new("SELECT * FROM (");
    for (i, (tier, from, to)) in ranges.iter().enumerate() {
        if i > 0 {
            query.push(" UNION ALL ");
        }
        query
            .push(format!(
                "SELECT tier, start, {EFFECT_COLUMNS} FROM space_tiers WHERE space_id = "
            ))
            .push_bind(space)
            .push(" AND tier = ")
            .push_bind(*tier as i64)
            .push(" AND start >= ")
            .push_bind(from.map_or(i64::MIN, micros))
            .push(" AND start < ")
            .push_bind(micros(*to));
    }
    query.push(") ORDER BY start, tier DESC");
    query
}

/// Summary ranges per statement of [`ranges_query`] (SQLite's compound SELECT limit is 500).
const RANGES_PER_STATEMENT: usize = 200;

/// Reads of counts and history over a pool.
#[derive(Clone, Debug)]
pub(super) struct Reader(pub(super) sqlx::SqlitePool);

#[async_trait::async_trait]
impl crate::tiers::TierRead for Reader {
    async fn tier_ranges(
        &self,
        space: SpaceId,
        ranges: &[(Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(Tier, Timestamp, Effect)>> {
        // One UNION ALL arm per range, and SQLite allows at most 500 arms a statement.
        let mut out = Vec::new();
        for chunk in ranges.chunks(RANGES_PER_STATEMENT) {
            let mut query = ranges_query(space, chunk);
            for row in query.build().fetch_all(&self.0).await? {
                let (start, effect) = tier_row_at(&row, 1)?;
                out.push((tier_of(row.get(0))?, start, effect));
            }
        }
        if ranges.len() > RANGES_PER_STATEMENT {
            out.sort_by_key(|&(tier, start, _)| (start, std::cmp::Reverse(tier)));
        }
        Ok(out)
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
        let rows: Vec<(Option<i64>,)> = sqlx::query_as(
            "SELECT (SELECT c.ts FROM space_counts c WHERE c.space_id = j.value \
                     ORDER BY c.ts DESC LIMIT 1) \
             FROM json_each(?) AS j ORDER BY j.key",
        )
        .bind(json(spaces)?)
        .fetch_all(&self.0)
        .await?;
        rows.into_iter()
            .map(|(ts,)| ts.map(from_micros).transpose())
            .collect()
    }

    async fn pending_before_each(
        &self,
        before: &[(SpaceId, Timestamp)],
    ) -> Result<Vec<(SpaceId, Timestamp)>> {
        let pairs: Vec<(SpaceId, i64)> = before.iter().map(|&(s, t)| (s, micros(t))).collect();
        let rows: Vec<(SpaceId, i64)> = sqlx::query_as(
            "SELECT DISTINCT p.space_id, p.minute FROM json_each(?) AS j \
             CROSS JOIN tier_pending p ON p.space_id = json_extract(j.value, '$[0]') \
              AND p.minute < json_extract(j.value, '$[1]') \
             ORDER BY p.space_id, p.minute",
        )
        .bind(json(&pairs)?)
        .fetch_all(&self.0)
        .await?;
        rows.into_iter()
            .map(|(space, minute)| Ok((space, from_micros(minute)?)))
            .collect()
    }

    async fn tier_ranges_each(
        &self,
        ranges: &[(SpaceId, Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(SpaceId, Tier, Timestamp, Effect)>> {
        let rows: Vec<(SpaceId, i64, i64, i64)> = ranges
            .iter()
            .map(|&(space, tier, from, to)| {
                (
                    space,
                    tier as i64,
                    from.map_or(i64::MIN, micros),
                    micros(to),
                )
            })
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT t.space_id, t.tier, t.start, {EFFECT_COLUMNS} FROM json_each(?) AS r \
             CROSS JOIN space_tiers t ON t.space_id = json_extract(r.value, '$[0]') \
              AND t.tier = json_extract(r.value, '$[1]') \
              AND t.start >= json_extract(r.value, '$[2]') \
              AND t.start < json_extract(r.value, '$[3]') \
             ORDER BY t.space_id, t.start, t.tier DESC"
        ))
        .bind(json(&rows)?)
        .fetch_all(&self.0)
        .await?;
        rows.iter()
            .map(|row| {
                let (start, effect) = tier_row_at(row, 2)?;
                Ok((row.get(0), tier_of(row.get(1))?, start, effect))
            })
            .collect()
    }

    async fn steps_each(&self, spans: &[Span]) -> Result<Vec<(SpaceId, Step)>> {
        entries_sql::steps_within(&mut *self.0.acquire().await?, spans).await
    }

    /// One statement per span, on one connection: SQLite runs them in-process, and a
    /// single statement could only number every entry of each span to cut it.
    async fn first_steps_each(&self, spans: &[Span], limit: usize) -> Result<Vec<(SpaceId, Step)>> {
        let mut conn = self.0.acquire().await?;
        let mut steps = Vec::new();
        for span in spans {
            let keys =
                entries_sql::between(&mut *conn, span.space, span.from, span.to, Some(limit));
            steps.extend(keys.await?.iter().map(|k| (span.space, Step::from(k))));
        }
        steps.sort();
        Ok(steps)
    }
}

/// A list as JSON, for `json_each`.
fn json(value: &(impl serde::Serialize + ?Sized)) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| crate::StoreError::Corrupt(format!("a list as JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomer_occupancy::tiers::count_ranges;
    use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};

    /// An in-memory database with the schema, on one connection.
    async fn migrated() -> SqlitePool {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .expect("in-memory database");
        sqlx::migrate!("../migrations/sqlite")
            .run(&pool)
            .await
            .expect("migrations");
        pool
    }

    /// Every range of a count is one index range (space, tier and start), whatever the
    /// history: the plan SQLite chooses for the query `count_at` sends.
    #[tokio::test]
    async fn each_range_of_a_count_is_one_index_range() {
        let pool = migrated().await;
        let t: Timestamp = "2026-06-01T12:34:56Z".parse().expect("constant");
        let ranges = count_ranges(Tier::Minute.floor(t));
        assert!(ranges.len() >= 3, "a count reads several tiers: {ranges:?}");
        // The plan does not depend on the values, so they are left unbound (NULL).
        let sql = format!("EXPLAIN QUERY PLAN {}", ranges_query(1, &ranges).sql());
        let explain = sqlx::query(&sql);
        let plan: Vec<String> = explain
            .fetch_all(&pool)
            .await
            .expect("plan")
            .iter()
            .map(|row| row.get::<String, _>(3))
            .collect();
        let searches: Vec<&String> = plan.iter().filter(|d| d.contains("space_tiers")).collect();
        assert_eq!(searches.len(), ranges.len(), "one read per range: {plan:?}");
        for search in searches {
            assert!(
                search.contains("tier=? AND start>? AND start<?"),
                "a range read by its whole key: {plan:?}"
            );
        }
    }

    /// More ranges than one statement may hold (SQLite allows 500 arms) come back whole and
    /// ordered by start, as `count_at` and history ask while many minutes await the summarizer.
    #[tokio::test]
    async fn many_ranges_are_read_in_several_statements_and_ordered() {
        let pool = migrated().await;
        let start: Timestamp = "2026-06-01T00:00:00Z".parse().expect("constant");
        let minutes: Vec<Timestamp> = (0..600)
            .map(|i| start + chrono::TimeDelta::minutes(i))
            .collect();
        let effect = Effect::crossing(1, false);
        let rows: Vec<(SpaceId, Timestamp, Option<Effect>)> =
            minutes.iter().map(|&m| (0, m, Some(effect))).collect();
        put_tier_rows(
            &mut pool.acquire().await.expect("connection"),
            Tier::Minute,
            &rows,
        )
        .await
        .expect("summaries stored");
        // One range per minute, latest first.
        let ranges: Vec<(Tier, Option<Timestamp>, Timestamp)> = minutes
            .iter()
            .rev()
            .map(|&m| (Tier::Minute, Some(m), Tier::Minute.end(m)))
            .collect();
        let read = crate::tiers::TierRead::tier_ranges(&Reader(pool), 0, &ranges)
            .await
            .expect("read");
        let starts: Vec<Timestamp> = read.iter().map(|&(_, s, _)| s).collect();
        assert_eq!(starts, minutes);
    }
}
