//! PostgreSQL: what the one-time upgrade of rule 3 reads and removes (see `crate::upgrade`).

use super::write::{direction, dpu, PgTx};
use crate::engine::{Result, WriteTx};
use crate::upgrade::{LegacyIds, Refusal};
use async_trait::async_trait;
use roomer_occupancy::Crossing;
use sqlx::Row;

#[async_trait]
impl LegacyIds for PgTx {
    async fn has_event_ids(&mut self) -> Result<bool> {
        // Workers starting together: the first one upgrades, the others wait here and then
        // find nothing left to do.
        self.lock_layout(true).await?;
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass('event_ids')::text")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(found.is_some())
    }

    async fn event_ids(&mut self) -> Result<Vec<Crossing>> {
        let rows = sqlx::query("SELECT dpu_id, event_id, ts, direction FROM event_ids")
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Crossing::new(
                    dpu(row.get(0))?,
                    row.get(2),
                    direction(row.get(3))?,
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
