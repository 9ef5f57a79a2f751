//! The SQLite write transaction: the primitives the shared write paths need. Rows go in
//! multi-row statements, because every statement is a round trip to sqlx's SQLite thread.

use super::{crossings_sql, entries_sql, from_micros, layout_sql, micros, ops_sql, tiers_sql};
use crate::engine::{Result, WriteTx};
use crate::tiers::{Note, Span};
use crate::StoreError;
use async_trait::async_trait;
use roomer_occupancy::effect::Effect;
use roomer_occupancy::layout::Attribution;
use roomer_occupancy::plan::{Known, NewCrossing};
use roomer_occupancy::series::{EntryKey, Step};
use roomer_occupancy::tiers::Tier;
use roomer_occupancy::{
    Crossing, CrossingKey, Direction, Doorway, DoorwayId, DpuId, Installation, Space, SpaceId,
    Timestamp,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub(crate) struct SqliteTx {
    pub(super) tx: Transaction<'static, Sqlite>,
    outcome: Recycle,
}

/// Raises `flag` unless the transaction committed: a write that failed (a full disk, a file
/// made read-only) can leave SQLite's connection unable to write even once the fault is gone,
/// so the pool replaces it before its next use (see `SqliteStore::connect`).
struct Recycle {
    flag: Arc<AtomicBool>,
    committed: bool,
}

impl Drop for Recycle {
    fn drop(&mut self) {
        if !self.committed {
            self.flag.store(true, Ordering::Release);
        }
    }
}

impl SqliteTx {
    pub(crate) fn new(tx: Transaction<'static, Sqlite>, recycle: Arc<AtomicBool>) -> Self {
        Self {
            tx,
            outcome: Recycle {
                flag: recycle,
                committed: false,
            },
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        let Self { tx, mut outcome } = self;
        let committed = tx.commit().await;
        outcome.committed = committed.is_ok();
        Ok(committed?)
    }
}

fn dpu(text: String) -> Result<DpuId> {
    DpuId::new(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn direction(value: i64) -> Result<Direction> {
    Direction::from_i64(value).ok_or_else(|| StoreError::Corrupt(format!("direction {value}")))
}

/// Appends `VALUES (ts, rank, dpu_id, copy), …` for a list of entry keys.
fn crossing(row: &SqliteRow) -> Result<(Crossing, u32, Option<DoorwayId>)> {
    let event_id: Option<i64> = row.get(4);
    let crossing = Crossing::new(
        dpu(row.get(0))?,
        from_micros(row.get(1))?,
        direction(row.get(2))?,
        event_id.map(|id| id as u64),
    );
    Ok((crossing, row.get(3), row.get(5)))
}

#[async_trait]
impl WriteTx for SqliteTx {
    async fn lock_layout(&mut self, _exclusive: bool) -> Result<()> {
        Ok(()) // One writer connection: transactions are already serial.
    }

    async fn try_lock_summaries(&mut self) -> Result<bool> {
        // The transaction is the only writer (BEGIN IMMEDIATE).
        Ok(true)
    }

    async fn lock_summaries(&mut self) -> Result<()> {
        Ok(())
    }

    async fn known(&mut self, batch: &[Crossing]) -> Result<Known> {
        crossings_sql::known(&mut self.tx, batch).await
    }

    async fn name_crossings(&mut self, named: &[(CrossingKey, u64)]) -> Result<bool> {
        crossings_sql::name(&mut self.tx, named).await
    }

    async fn attribution(&mut self, dpus: &[DpuId]) -> Result<Attribution> {
        // One statement for the whole batch (one per DPU cost more than the rest of a
        // batch's bookkeeping); CROSS JOIN makes SQLite look each DPU up in the index.
        let ids = serde_json::to_string(&dpus.iter().map(DpuId::as_str).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(format!("DPU ids as JSON: {e}")))?;
        let rows = sqlx::query(
            "SELECT i.dpu_id, i.valid_from, i.valid_until, d.id, d.name, d.exiting_to, \
                    d.entering_to \
             FROM json_each(?) AS b CROSS JOIN installations i ON i.dpu_id = b.value \
             JOIN doorways d ON d.id = i.doorway_id ORDER BY i.dpu_id, i.valid_from",
        )
        .bind(ids)
        .fetch_all(&mut *self.tx)
        .await?;
        let installed = rows.iter().map(|row| {
            let doorway = Doorway {
                id: row.get(3),
                name: row.get(4),
                exiting_to: row.get(5),
                entering_to: row.get(6),
            };
            let dpu = DpuId::new(row.get::<String, _>(0))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let installation = Installation {
                doorway: doorway.id,
                from: from_micros(row.get(1))?,
                until: row.get::<Option<i64>, _>(2).map(from_micros).transpose()?,
            };
            Ok((dpu, installation, doorway))
        });
        Ok(Attribution::from_installed(
            installed.collect::<Result<Vec<_>>>()?,
        ))
    }

    async fn insert_crossings(
        &mut self,
        rows: &[NewCrossing],
        received_at: Timestamp,
    ) -> Result<usize> {
        crossings_sql::insert(&mut self.tx, rows, received_at).await
    }

    async fn remove_entries(&mut self, keys: &[(SpaceId, EntryKey)]) -> Result<()> {
        entries_sql::remove(&mut self.tx, keys).await
    }

    async fn insert_entries(&mut self, keys: &[(SpaceId, EntryKey)]) -> Result<()> {
        entries_sql::insert(&mut self.tx, keys).await
    }

    async fn entry_counts(&mut self, spans: &[Span]) -> Result<Vec<usize>> {
        entries_sql::counts_within(&mut self.tx, spans).await
    }

    async fn steps_in(&mut self, spans: &[Span]) -> Result<Vec<(SpaceId, Step)>> {
        entries_sql::steps_within(&mut self.tx, spans).await
    }

    async fn tier_rows_in(
        &mut self,
        tier: Tier,
        spans: &[Span],
    ) -> Result<Vec<(SpaceId, Timestamp, Effect)>> {
        tiers_sql::tier_rows_in(&mut self.tx, tier, spans).await
    }

    async fn put_tier_rows(
        &mut self,
        tier: Tier,
        rows: &[(SpaceId, Timestamp, Option<Effect>)],
    ) -> Result<()> {
        tiers_sql::put_tier_rows(&mut self.tx, tier, rows).await
    }

    async fn mark_pending(&mut self, notes: &[(SpaceId, Timestamp, i64)]) -> Result<()> {
        entries_sql::mark_pending(&mut self.tx, notes).await
    }

    async fn take_pending(&mut self, limit: usize) -> Result<Vec<Note>> {
        entries_sql::take_pending(&mut self.tx, limit).await
    }

    async fn clear_tiers(&mut self, space: SpaceId) -> Result<()> {
        tiers_sql::clear_tiers(&mut self.tx, space).await
    }

    async fn entry_minutes(&mut self, space: SpaceId) -> Result<Vec<Timestamp>> {
        entries_sql::minutes(&mut self.tx, space).await
    }

    async fn tiers_missing(&mut self) -> Result<bool> {
        tiers_sql::tiers_missing(&mut self.tx).await
    }

    async fn spaces_with_entries(&mut self) -> Result<Vec<SpaceId>> {
        tiers_sql::spaces_with_entries(&mut self.tx).await
    }

    async fn doorways(&mut self) -> Result<Vec<Doorway>> {
        let rows = sqlx::query("SELECT id, name, exiting_to, entering_to FROM doorways")
            .fetch_all(&mut *self.tx)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Doorway {
                id: r.get(0),
                name: r.get(1),
                exiting_to: r.get(2),
                entering_to: r.get(3),
            })
            .collect())
    }

    async fn upsert_space(&mut self, space: &Space) -> Result<bool> {
        layout_sql::upsert_space(&mut self.tx, space).await
    }

    async fn spaces(&mut self) -> Result<Vec<Space>> {
        layout_sql::all_spaces(&mut self.tx).await
    }

    async fn delete_space(&mut self, id: SpaceId) -> Result<bool> {
        layout_sql::delete_space(&mut self.tx, id).await
    }

    async fn doorway_installed(&mut self, id: DoorwayId) -> Result<bool> {
        layout_sql::doorway_installed(&mut self.tx, id).await
    }

    async fn delete_doorway(&mut self, id: DoorwayId) -> Result<bool> {
        layout_sql::delete_doorway(&mut self.tx, id).await
    }

    async fn delete_dpu(&mut self, dpu: &DpuId) -> Result<bool> {
        layout_sql::delete_dpu(&mut self.tx, dpu).await
    }

    async fn upsert_doorway(&mut self, d: &Doorway) -> Result<bool> {
        let result = sqlx::query(
            "INSERT INTO doorways (id, name, exiting_to, entering_to) VALUES (?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 exiting_to = excluded.exiting_to, entering_to = excluded.entering_to \
             WHERE (name, exiting_to, entering_to) \
                 IS NOT (excluded.name, excluded.exiting_to, excluded.entering_to)",
        )
        .bind(d.id)
        .bind(&d.name)
        .bind(d.exiting_to)
        .bind(d.entering_to)
        .execute(&mut *self.tx)
        .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn upsert_dpu(&mut self, dpu: &DpuId) -> Result<bool> {
        let result = sqlx::query("INSERT INTO dpus (id) VALUES (?) ON CONFLICT DO NOTHING")
            .bind(dpu.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn installations(&mut self, dpu: &DpuId) -> Result<Vec<Installation>> {
        let rows = sqlx::query(
            "SELECT valid_from, valid_until, doorway_id FROM installations \
             WHERE dpu_id = ? ORDER BY valid_from",
        )
        .bind(dpu.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Installation {
                    from: from_micros(r.get(0))?,
                    until: r.get::<Option<i64>, _>(1).map(from_micros).transpose()?,
                    doorway: r.get(2),
                })
            })
            .collect()
    }

    async fn replace_installations(&mut self, dpu: &DpuId, history: &[Installation]) -> Result<()> {
        sqlx::query("DELETE FROM installations WHERE dpu_id = ?")
            .bind(dpu.as_str())
            .execute(&mut *self.tx)
            .await?;
        for i in history {
            sqlx::query(
                "INSERT INTO installations (dpu_id, valid_from, valid_until, doorway_id) \
                 VALUES (?, ?, ?, ?)",
            )
            .bind(dpu.as_str())
            .bind(micros(i.from))
            .bind(i.until.map(micros))
            .bind(i.doorway)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn crossings_for(
        &mut self,
        dpus: &[DpuId],
        doorways: &[DoorwayId],
    ) -> Result<Vec<(Crossing, u32, Option<DoorwayId>)>> {
        const COLUMNS: &str =
            "SELECT dpu_id, ts, direction, copy, event_id, doorway_id FROM crossings";
        let mut found = BTreeMap::new();
        for id in dpus {
            let rows = sqlx::query(&format!("{COLUMNS} WHERE dpu_id = ?"))
                .bind(id.as_str())
                .fetch_all(&mut *self.tx)
                .await?;
            for row in &rows {
                let (c, copy, d) = crossing(row)?;
                found.insert((c.key(), copy), (c, copy, d));
            }
        }
        for id in doorways {
            let rows = sqlx::query(&format!("{COLUMNS} WHERE doorway_id = ?"))
                .bind(id)
                .fetch_all(&mut *self.tx)
                .await?;
            for row in &rows {
                let (c, copy, d) = crossing(row)?;
                found.insert((c.key(), copy), (c, copy, d));
            }
        }
        Ok(found.into_values().collect())
    }

    async fn set_doorways(&mut self, moved: &[(CrossingKey, Option<DoorwayId>)]) -> Result<()> {
        for (key, doorway) in moved {
            sqlx::query(
                "UPDATE crossings SET doorway_id = ? WHERE dpu_id = ? AND ts = ? AND direction = ?",
            )
            .bind(doorway)
            .bind(key.dpu.as_str())
            .bind(micros(key.ts))
            .bind(key.direction.as_i64())
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn insert_rejected(&mut self, rows: &[crate::Rejected]) -> Result<()> {
        ops_sql::insert_rejected(&mut self.tx, rows).await
    }

    async fn record_statuses(&mut self, statuses: &[(DpuId, bool, Timestamp)]) -> Result<()> {
        ops_sql::record_statuses(&mut self.tx, statuses).await
    }

    async fn record_seen(&mut self, seen: &[(DpuId, Timestamp)]) -> Result<()> {
        ops_sql::record_seen(&mut self.tx, seen).await
    }
}
