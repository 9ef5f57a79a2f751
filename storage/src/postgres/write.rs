//! The PostgreSQL write transaction: set-based statements (`UNNEST` of arrays), so a batch
//! costs a few round trips rather than one per row.

use super::{crossings_sql, entries_sql, layout_sql, ops_sql, tiers_sql};
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
use sqlx::{Postgres, Row, Transaction};

/// Advisory lock classes (first key of `pg_advisory_xact_lock(int, int)`).
const LOCK_LAYOUT: i32 = 0x526f_0001;
/// The summarizer's turn (taken without waiting by batches, waited for by layout changes).
pub(crate) const LOCK_SUMMARIES: i32 = 0x526f_0004;

pub(crate) struct PgTx {
    pub(super) tx: Transaction<'static, Postgres>,
    /// The series are hypertables (TimescaleDB).
    hypertables: bool,
}

impl PgTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>, hypertables: bool) -> Self {
        Self { tx, hypertables }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        Ok(self.tx.commit().await?)
    }
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(super) fn dpu(text: String) -> Result<DpuId> {
    DpuId::new(text).map_err(corrupt)
}

pub(super) fn direction(value: i16) -> Result<Direction> {
    Direction::from_i64(value.into()).ok_or_else(|| corrupt(format!("direction {value}")))
}

#[async_trait]
impl WriteTx for PgTx {
    async fn lock_layout(&mut self, exclusive: bool) -> Result<()> {
        let sql = if exclusive {
            "SELECT pg_advisory_xact_lock($1, 0)"
        } else {
            "SELECT pg_advisory_xact_lock_shared($1, 0)"
        };
        sqlx::query(sql)
            .bind(LOCK_LAYOUT)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn try_lock_summaries(&mut self) -> Result<bool> {
        let (got,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_xact_lock($1, 0)")
            .bind(LOCK_SUMMARIES)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(got)
    }

    async fn lock_summaries(&mut self) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
            .bind(LOCK_SUMMARIES)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn known(&mut self, batch: &[Crossing]) -> Result<Known> {
        crossings_sql::known(&mut self.tx, batch).await
    }

    async fn name_crossings(&mut self, named: &[(CrossingKey, u64)]) -> Result<bool> {
        crossings_sql::name(&mut self.tx, named).await
    }

    async fn attribution(&mut self, dpus: &[DpuId]) -> Result<Attribution> {
        let rows = sqlx::query(
            "SELECT i.dpu_id, i.valid_from, i.valid_until, d.id, d.name, d.exiting_to, d.entering_to \
             FROM installations i JOIN doorways d ON d.id = i.doorway_id \
             WHERE i.dpu_id = ANY($1) ORDER BY i.dpu_id, i.valid_from",
        )
        .bind(dpus.iter().map(DpuId::as_str).collect::<Vec<_>>())
        .fetch_all(&mut *self.tx)
        .await?;
        let installed = rows.iter().map(|row| {
            let doorway = Doorway {
                id: row.get(3),
                name: row.get(4),
                exiting_to: row.get(5),
                entering_to: row.get(6),
            };
            let installation = Installation {
                doorway: doorway.id,
                from: row.get(1),
                until: row.get(2),
            };
            Ok((dpu(row.get(0))?, installation, doorway))
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
        entries_sql::remove(&mut self.tx, keys, self.hypertables).await
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
            "INSERT INTO doorways (id, name, exiting_to, entering_to) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
                 exiting_to = EXCLUDED.exiting_to, entering_to = EXCLUDED.entering_to \
             WHERE (doorways.name, doorways.exiting_to, doorways.entering_to) \
                 IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.exiting_to, EXCLUDED.entering_to)",
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
        let result = sqlx::query("INSERT INTO dpus (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(dpu.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(result.rows_affected() > 0)
    }

    async fn installations(&mut self, dpu: &DpuId) -> Result<Vec<Installation>> {
        let rows = sqlx::query(
            "SELECT valid_from, valid_until, doorway_id FROM installations \
             WHERE dpu_id = $1 ORDER BY valid_from",
        )
        .bind(dpu.as_str())
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Installation {
                from: r.get(0),
                until: r.get(1),
                doorway: r.get(2),
            })
            .collect())
    }

    async fn replace_installations(&mut self, dpu: &DpuId, history: &[Installation]) -> Result<()> {
        sqlx::query("DELETE FROM installations WHERE dpu_id = $1")
            .bind(dpu.as_str())
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO installations (dpu_id, valid_from, valid_until, doorway_id) \
             SELECT $1, u.* FROM UNNEST($2::timestamptz[], $3::timestamptz[], $4::bigint[]) AS u",
        )
        .bind(dpu.as_str())
        .bind(history.iter().map(|i| i.from).collect::<Vec<_>>())
        .bind(history.iter().map(|i| i.until).collect::<Vec<_>>())
        .bind(history.iter().map(|i| i.doorway).collect::<Vec<_>>())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn crossings_for(
        &mut self,
        dpus: &[DpuId],
        doorways: &[DoorwayId],
    ) -> Result<Vec<(Crossing, u32, Option<DoorwayId>)>> {
        crossings_sql::of(&mut self.tx, dpus, doorways).await
    }

    async fn set_doorways(&mut self, moved: &[(CrossingKey, Option<DoorwayId>)]) -> Result<()> {
        crossings_sql::set_doorways(&mut self.tx, moved).await
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
