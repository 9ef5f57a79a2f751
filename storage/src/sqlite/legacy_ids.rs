//! SQLite: what the one-time upgrade of rule 3 reads and removes (see `crate::upgrade`).

use super::from_micros;
use super::write::SqliteTx;
use crate::engine::Result;
use crate::upgrade::{LegacyIds, Refusal};
use crate::StoreError;
use async_trait::async_trait;
use roomer_occupancy::{Crossing, Direction, DpuId};
use sqlx::Row;

#[async_trait]
impl LegacyIds for SqliteTx {
    async fn has_event_ids(&mut self) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'event_ids'",
        )
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(found.is_some())
    }

    async fn event_ids(&mut self) -> Result<Vec<Crossing>> {
        let rows = sqlx::query("SELECT dpu_id, event_id, ts, direction FROM event_ids")
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| {
                let corrupt = |what: String| StoreError::Corrupt(what);
                let direction: i64 = row.get(3);
                Ok(Crossing::new(
                    DpuId::new(row.get::<String, _>(0)).map_err(|e| corrupt(e.to_string()))?,
                    from_micros(row.get(2))?,
                    Direction::from_i64(direction)
                        .ok_or_else(|| corrupt(format!("direction {direction}")))?,
                    Some(row.get::<i64, _>(1) as u64),
                ))
            })
            .collect()
    }

    async fn id_conflicts(&mut self) -> Result<Vec<Refusal>> {
        let rows = sqlx::query(
            "SELECT dpu_id, source, payload FROM rejected WHERE reason = 'id_conflict'",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        Ok(rows
            .iter()
            .map(|row| Refusal {
                dpu_id: row.get(0),
                source: row.get(1),
                payload: row.get(2),
            })
            .collect())
    }

    async fn forget_legacy_ids(&mut self) -> Result<()> {
        sqlx::query("DELETE FROM rejected WHERE reason = 'id_conflict'")
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DROP TABLE event_ids")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
