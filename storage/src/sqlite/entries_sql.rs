//! SQLite: the entries of the count series (`space_counts`) and the notes of minutes waiting
//! for the summarizer (`tier_pending`). Rows go in multi-row statements; lists to join
//! against travel as one JSON array read with `json_each`, and `CROSS JOIN` makes SQLite
//! loop over the list and range-scan the index for each element (left to choose, it may scan
//! a space's whole series instead).

use super::{from_micros, micros};
use crate::engine::Result;
use crate::tiers::{Note, Span};
use crate::StoreError;
use roomer_occupancy::series::{EntryKey, Rank, Step};
use roomer_occupancy::{DpuId, SpaceId, Timestamp};
use sqlx::sqlite::SqliteRow;
use sqlx::{Executor, QueryBuilder, Row, Sqlite, SqliteConnection};

/// Rows per multi-row statement: at most 5 parameters a row, well under SQLite's limit of
/// 32,766 parameters a statement.
const CHUNK: usize = 1000;

/// An entry key from its stored columns.
fn entry_key(ts: i64, rank: i16, dpu: String, copy: u32) -> Result<EntryKey> {
    Ok(EntryKey {
        ts: from_micros(ts)?,
        rank: Rank::from_i16(rank).ok_or_else(|| StoreError::Corrupt(format!("rank {rank}")))?,
        dpu: DpuId::new(dpu).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        copy,
    })
}

/// An entry key from columns `first..first + 4` (ts, rank, dpu_id, copy).
pub(super) fn entry_key_at(row: &SqliteRow, first: usize) -> Result<EntryKey> {
    entry_key(
        row.get(first),
        row.get(first + 1),
        row.get(first + 2),
        row.get(first + 3),
    )
}

/// Spans as `[[space, from, to], …]` (µs), for `json_each`.
pub(super) fn spans_json(spans: &[Span]) -> String {
    let items: Vec<String> = spans
        .iter()
        .map(|s| format!("[{},{},{}]", s.space, micros(s.from), micros(s.to)))
        .collect();
    format!("[{}]", items.join(","))
}

/// `VALUES (space, ts, rank, dpu, copy), …` of keyed entries.
fn push_keys(query: &mut QueryBuilder<'_, Sqlite>, keys: &[(SpaceId, EntryKey)]) {
    query.push_values(keys, |mut row, (space, key)| {
        row.push_bind(*space)
            .push_bind(micros(key.ts))
            .push_bind(key.rank.as_i16())
            .push_bind(key.dpu.as_str().to_owned())
            .push_bind(key.copy);
    });
}

pub(super) async fn remove(tx: &mut SqliteConnection, keys: &[(SpaceId, EntryKey)]) -> Result<()> {
    for chunk in keys.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "DELETE FROM space_counts WHERE (space_id, ts, rank, dpu_id, copy) IN (",
        );
        push_keys(&mut query, chunk);
        query.push(")");
        query.build().execute(&mut *tx).await?;
    }
    Ok(())
}

pub(super) async fn insert(tx: &mut SqliteConnection, keys: &[(SpaceId, EntryKey)]) -> Result<()> {
    for chunk in keys.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO space_counts (space_id, ts, rank, dpu_id, copy) ",
        );
        push_keys(&mut query, chunk);
        query.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// The entries of one space in `[from, to)`, in key order.
pub(super) async fn between<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
    limit: Option<usize>,
) -> Result<Vec<EntryKey>> {
    let rows = sqlx::query(
        "SELECT ts, rank, dpu_id, copy FROM space_counts \
         WHERE space_id = ? AND ts >= ? AND ts < ? ORDER BY ts, rank, dpu_id, copy LIMIT ?",
    )
    .bind(space)
    .bind(micros(from))
    .bind(micros(to))
    // SQLite reads a negative limit as none.
    .bind(limit.and_then(|n| i64::try_from(n).ok()).unwrap_or(-1))
    .fetch_all(db)
    .await?;
    rows.iter().map(|row| entry_key_at(row, 0)).collect()
}

/// How many entries each span holds, in the order given: one index range count per span,
/// all in one JSON row.
pub(super) async fn counts_within(tx: &mut SqliteConnection, spans: &[Span]) -> Result<Vec<usize>> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let (json,): (Option<String>,) = sqlx::query_as(
        "SELECT json_group_array(n) FROM ( \
           SELECT (SELECT count(*) FROM space_counts c \
                   WHERE c.space_id = json_extract(r.value, '$[0]') \
                     AND c.ts >= json_extract(r.value, '$[1]') \
                     AND c.ts < json_extract(r.value, '$[2]')) AS n \
           FROM json_each(?) AS r ORDER BY r.key)",
    )
    .bind(spans_json(spans))
    .fetch_one(tx)
    .await?;
    let counts: Vec<usize> = serde_json::from_str(json.as_deref().unwrap_or("[]"))
        .map_err(|e| StoreError::Corrupt(format!("counts as JSON: {e}")))?;
    if counts.len() != spans.len() {
        return Err(StoreError::Corrupt(format!(
            "{} counts for {} spans",
            counts.len(),
            spans.len()
        )));
    }
    Ok(counts)
}

/// The entries inside the spans as steps, ordered by space, instant and rank: one range
/// scan per span. They come back as one JSON array in one row: sqlx hands each row of an
/// SQLite result from its database thread to the caller on its own, which costs more than
/// the scan (a minute of a busy space holds thousands of entries).
pub(super) async fn steps_within(
    tx: &mut SqliteConnection,
    spans: &[Span],
) -> Result<Vec<(SpaceId, Step)>> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let (json,): (Option<String>,) = sqlx::query_as(
        "SELECT json_group_array(json_array(space_id, ts, rank)) FROM ( \
           SELECT c.space_id, c.ts, c.rank FROM json_each(?) AS r \
           CROSS JOIN space_counts c ON c.space_id = json_extract(r.value, '$[0]') \
            AND c.ts >= json_extract(r.value, '$[1]') AND c.ts < json_extract(r.value, '$[2]') \
           ORDER BY c.space_id, c.ts, c.rank)",
    )
    .bind(spans_json(spans))
    .fetch_one(tx)
    .await?;
    let rows: Vec<(SpaceId, i64, i16)> = serde_json::from_str(json.as_deref().unwrap_or("[]"))
        .map_err(|e| StoreError::Corrupt(format!("entries as JSON: {e}")))?;
    rows.into_iter()
        .map(|(space, ts, rank)| {
            let rank =
                Rank::from_i16(rank).ok_or_else(|| StoreError::Corrupt(format!("rank {rank}")))?;
            Ok((
                space,
                Step {
                    ts: from_micros(ts)?,
                    rank,
                },
            ))
        })
        .collect()
}

pub(super) async fn minutes(tx: &mut SqliteConnection, space: SpaceId) -> Result<Vec<Timestamp>> {
    let minute = roomer_occupancy::tiers::Tier::Minute.seconds() * 1_000_000;
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT ts - ((ts % ?1) + ?1) % ?1 FROM space_counts WHERE space_id = ?2 ORDER BY 1",
    )
    .bind(minute)
    .bind(space)
    .fetch_all(tx)
    .await?;
    rows.into_iter().map(|(m,)| from_micros(m)).collect()
}

/// Merges the notes into the minutes' notes (one row per space and minute: the writer is
/// alone, so no other transaction waits on the row; NULL seconds, a whole minute, stay so).
pub(super) async fn mark_pending(
    tx: &mut SqliteConnection,
    notes: &[(SpaceId, Timestamp, i64)],
) -> Result<()> {
    for chunk in notes.chunks(CHUNK) {
        let mut query =
            QueryBuilder::<Sqlite>::new("INSERT INTO tier_pending (space_id, minute, seconds) ");
        query.push_values(chunk, |mut row, (space, minute, seconds)| {
            row.push_bind(*space)
                .push_bind(micros(*minute))
                .push_bind(*seconds);
        });
        query.push(
            " ON CONFLICT (space_id, minute) \
             DO UPDATE SET seconds = tier_pending.seconds | excluded.seconds",
        );
        query.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Deletes up to `limit` notes and answers them, in one statement.
pub(super) async fn take_pending(tx: &mut SqliteConnection, limit: usize) -> Result<Vec<Note>> {
    let rows: Vec<(SpaceId, i64, Option<i64>)> = sqlx::query_as(
        "DELETE FROM tier_pending \
         WHERE (space_id, minute) IN \
             (SELECT space_id, minute FROM tier_pending ORDER BY space_id, minute LIMIT ?) \
         RETURNING space_id, minute, seconds",
    )
    .bind(limit as i64)
    .fetch_all(tx)
    .await?;
    rows.into_iter()
        .map(|(space, m, seconds)| Ok((space, from_micros(m)?, seconds)))
        .collect()
}

pub(super) async fn any_pending<'e>(db: impl Executor<'e, Database = Sqlite>) -> Result<bool> {
    let (any,): (bool,) = sqlx::query_as("SELECT EXISTS (SELECT 1 FROM tier_pending)")
        .fetch_one(db)
        .await?;
    Ok(any)
}

pub(super) async fn pending_between<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Timestamp>> {
    let rows: Vec<(i64,)> = sqlx::query_as(
        "SELECT DISTINCT minute FROM tier_pending \
         WHERE space_id = ? AND minute >= ? AND minute < ? ORDER BY minute",
    )
    .bind(space)
    .bind(micros(from))
    .bind(micros(to))
    .fetch_all(db)
    .await?;
    rows.into_iter().map(|(m,)| from_micros(m)).collect()
}
