//! PostgreSQL: the entries of the count series (`space_counts`) and the notes of minutes
//! waiting for the summarizer (`tier_pending`). Lists travel as arrays (`UNNEST`); every
//! scan of `space_counts` also gets the time range it covers, so that on TimescaleDB only
//! the chunks in range are searched.

use crate::engine::Result;
use crate::tiers::{Note, Span};
use crate::StoreError;
use roomer_occupancy::series::{EntryKey, Rank, Step};
use roomer_occupancy::{DpuId, SpaceId, Timestamp};
use sqlx::postgres::PgRow;
use sqlx::{Executor, PgConnection, Postgres, Row};

pub(super) fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(what)
}

/// An entry key from columns `first..first + 4` (ts, rank, dpu_id, copy).
pub(super) fn entry_key_at(row: &PgRow, first: usize) -> Result<EntryKey> {
    let rank: i16 = row.get(first + 1);
    Ok(EntryKey {
        ts: row.get(first),
        rank: Rank::from_i16(rank).ok_or_else(|| corrupt(format!("rank {rank}")))?,
        dpu: DpuId::new(row.get::<String, _>(first + 2)).map_err(|e| corrupt(e.to_string()))?,
        copy: row.get::<i32, _>(first + 3) as u32,
    })
}

/// Columns of keyed entries, for `UNNEST($n::bigint[], $n+1::timestamptz[],
/// $n+2::smallint[], $n+3::text[], $n+4::integer[])`.
type KeyColumns = (
    Vec<SpaceId>,
    Vec<Timestamp>,
    Vec<i16>,
    Vec<String>,
    Vec<i32>,
);

fn key_columns(keys: &[(SpaceId, EntryKey)]) -> KeyColumns {
    (
        keys.iter().map(|(s, _)| *s).collect(),
        keys.iter().map(|(_, k)| k.ts).collect(),
        keys.iter().map(|(_, k)| k.rank.as_i16()).collect(),
        keys.iter()
            .map(|(_, k)| k.dpu.as_str().to_owned())
            .collect(),
        keys.iter().map(|(_, k)| k.copy as i32).collect(),
    )
}

/// On hypertables (TimescaleDB), a join by key also gets the keys' time range, so that only
/// the chunks in range are touched (5× faster ingest measured). Plain PostgreSQL plans such a
/// join worse with the range (8× slower measured), so it gets nothing.
pub(super) async fn remove(
    tx: &mut PgConnection,
    keys: &[(SpaceId, EntryKey)],
    hypertables: bool,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let (spaces, ts, rank, dpus, copies) = key_columns(keys);
    let bounds = if hypertables {
        "AND s.ts >= $6 AND s.ts <= $7"
    } else {
        ""
    };
    let sql = format!(
        "DELETE FROM space_counts s \
         USING UNNEST($1::bigint[], $2::timestamptz[], $3::smallint[], $4::text[], \
                      $5::integer[]) AS k(space_id, ts, rank, dpu_id, copy) \
         WHERE s.space_id = k.space_id AND s.ts = k.ts AND s.rank = k.rank \
           AND s.dpu_id = k.dpu_id AND s.copy = k.copy {bounds}"
    );
    let mut query = sqlx::query(&sql)
        .bind(spaces)
        .bind(&ts)
        .bind(rank)
        .bind(dpus)
        .bind(copies);
    if hypertables {
        query = query
            .bind(ts.iter().min().copied())
            .bind(ts.iter().max().copied());
    }
    query.execute(tx).await?;
    Ok(())
}

pub(super) async fn insert(tx: &mut PgConnection, keys: &[(SpaceId, EntryKey)]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let (spaces, ts, rank, dpus, copies) = key_columns(keys);
    sqlx::query(
        "INSERT INTO space_counts (space_id, ts, rank, dpu_id, copy) \
         SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::smallint[], $4::text[], \
                              $5::integer[])",
    )
    .bind(spaces)
    .bind(ts)
    .bind(rank)
    .bind(dpus)
    .bind(copies)
    .execute(tx)
    .await?;
    Ok(())
}

/// The entries of one space in `[from, to)`, in key order.
pub(super) async fn between<'e>(
    db: impl Executor<'e, Database = Postgres>,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
    limit: Option<usize>,
) -> Result<Vec<EntryKey>> {
    let rows = sqlx::query(
        "SELECT ts, rank, dpu_id, copy FROM space_counts \
         WHERE space_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, rank, dpu_id, copy LIMIT $4",
    )
    .bind(space)
    .bind(from)
    .bind(to)
    // PostgreSQL reads a null limit as none.
    .bind(limit.and_then(|n| i64::try_from(n).ok()))
    .fetch_all(db)
    .await?;
    rows.iter().map(|row| entry_key_at(row, 0)).collect()
}

/// Columns of spans, for `UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[])`.
pub(super) fn span_columns(spans: &[Span]) -> (Vec<SpaceId>, Vec<Timestamp>, Vec<Timestamp>) {
    (
        spans.iter().map(|s| s.space).collect(),
        spans.iter().map(|s| s.from).collect(),
        spans.iter().map(|s| s.to).collect(),
    )
}

/// Runs `sql` with the spans bound as `$1..$3` (for `UNNEST`) and their overall range as
/// `$4, $5`, so that TimescaleDB searches only the chunks in range.
async fn fetch_over_spans(tx: &mut PgConnection, sql: &str, spans: &[Span]) -> Result<Vec<PgRow>> {
    let (Some(first), Some(end)) = (
        spans.iter().map(|s| s.from).min(),
        spans.iter().map(|s| s.to).max(),
    ) else {
        return Ok(Vec::new());
    };
    let (spaces, froms, tos) = span_columns(spans);
    Ok(sqlx::query(sql)
        .bind(spaces)
        .bind(froms)
        .bind(tos)
        .bind(first)
        .bind(end)
        .fetch_all(tx)
        .await?)
}

/// How many entries each span holds, in the order given: one index range count per span.
pub(super) async fn counts_within(tx: &mut PgConnection, spans: &[Span]) -> Result<Vec<usize>> {
    let rows = fetch_over_spans(
        tx,
        "SELECT (SELECT count(*) FROM space_counts c \
                 WHERE c.space_id = r.space_id AND c.ts >= r.lo AND c.ts < r.hi \
                   AND c.ts >= $4 AND c.ts < $5) \
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[]) \
              WITH ORDINALITY AS r(space_id, lo, hi, n) \
         ORDER BY r.n",
        spans,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| row.get::<i64, _>(0).max(0) as usize)
        .collect())
}

/// The entries inside the spans, ordered by space and key: one range scan per span.
pub(super) async fn steps_within(
    tx: &mut PgConnection,
    spans: &[Span],
) -> Result<Vec<(SpaceId, Step)>> {
    let rows = fetch_over_spans(
        tx,
        // One index range scan per span (LATERAL, kept from being flattened into a join by
        // OFFSET 0). As a join, with thousands of spans (the seconds of busy minutes) the
        // planner merged on the space alone and compared every span of Outside with every
        // entry of its day: minutes instead of under a second for 50,000 spans.
        "SELECT r.space_id, c.ts, c.rank \
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS r(space_id, lo, hi) \
         CROSS JOIN LATERAL (SELECT c.ts, c.rank, c.dpu_id, c.copy FROM space_counts c \
              WHERE c.space_id = r.space_id AND c.ts >= r.lo AND c.ts < r.hi \
                AND c.ts >= $4 AND c.ts < $5 OFFSET 0) AS c \
         ORDER BY r.space_id, c.ts, c.rank",
        spans,
    )
    .await?;
    rows.iter().map(step_at).collect()
}

/// A row of (space, instant, rank) as a step of that space.
fn step_at(row: &PgRow) -> Result<(SpaceId, Step)> {
    let rank: i16 = row.get(2);
    let rank = Rank::from_i16(rank).ok_or_else(|| corrupt(format!("rank {rank}")))?;
    Ok((
        row.get(0),
        Step {
            ts: row.get(1),
            rank,
        },
    ))
}

/// The first `limit` entries of each span as steps, ordered by space, instant and rank: one
/// index range scan per span, stopped at the limit.
pub(super) async fn first_steps_within(
    tx: &mut PgConnection,
    spans: &[Span],
    limit: usize,
) -> Result<Vec<(SpaceId, Step)>> {
    // The limit is a constant of the caller's, so the statement text stays one.
    let sql = format!(
        "SELECT r.space_id, c.ts, c.rank \
         FROM UNNEST($1::bigint[], $2::timestamptz[], $3::timestamptz[]) AS r(space_id, lo, hi) \
         CROSS JOIN LATERAL (SELECT c.ts, c.rank FROM space_counts c \
              WHERE c.space_id = r.space_id AND c.ts >= r.lo AND c.ts < r.hi \
                AND c.ts >= $4 AND c.ts < $5 \
              ORDER BY c.ts, c.rank, c.dpu_id, c.copy LIMIT {limit}) AS c \
         ORDER BY r.space_id, c.ts, c.rank"
    );
    let rows = fetch_over_spans(tx, &sql, spans).await?;
    rows.iter().map(step_at).collect()
}

pub(super) async fn minutes(tx: &mut PgConnection, space: SpaceId) -> Result<Vec<Timestamp>> {
    let rows: Vec<(Timestamp,)> = sqlx::query_as(
        "SELECT DISTINCT to_timestamp(floor(extract(epoch FROM ts) / 60) * 60) \
         FROM space_counts WHERE space_id = $1 ORDER BY 1",
    )
    .bind(space)
    .fetch_all(tx)
    .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}

pub(super) async fn mark_pending(
    tx: &mut PgConnection,
    notes: &[(SpaceId, Timestamp, i64)],
) -> Result<()> {
    if notes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO tier_pending (space_id, minute, seconds) \
         SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::bigint[])",
    )
    .bind(notes.iter().map(|n| n.0).collect::<Vec<_>>())
    .bind(notes.iter().map(|n| n.1).collect::<Vec<_>>())
    .bind(notes.iter().map(|n| n.2).collect::<Vec<_>>())
    .execute(tx)
    .await?;
    Ok(())
}

/// Deletes up to `limit` notes, the first by space and minute (`tier_pending_space_minute`),
/// and answers them, in one statement: the rows are found by their physical address
/// (`ctid`, stable within the statement), so notes need no id of their own, whose sequence
/// and index every batch's notes paid for.
pub(super) async fn take_pending(tx: &mut PgConnection, limit: usize) -> Result<Vec<Note>> {
    Ok(sqlx::query_as(
        "DELETE FROM tier_pending \
         WHERE ctid = ANY(ARRAY(SELECT ctid FROM tier_pending \
                                ORDER BY space_id, minute LIMIT $1)) \
         RETURNING space_id, minute, seconds",
    )
    .bind(limit as i64)
    .fetch_all(tx)
    .await?)
}

/// Whether any note waits for the summarizer.
pub(super) async fn any_pending<'e>(db: impl Executor<'e, Database = Postgres>) -> Result<bool> {
    let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM tier_pending)")
        .fetch_one(db)
        .await?;
    Ok(any)
}

pub(super) async fn pending_between<'e>(
    db: impl Executor<'e, Database = Postgres>,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Timestamp>> {
    let rows: Vec<(Timestamp,)> = sqlx::query_as(
        "SELECT DISTINCT minute FROM tier_pending \
         WHERE space_id = $1 AND minute >= $2 AND minute < $3 ORDER BY minute",
    )
    .bind(space)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}
