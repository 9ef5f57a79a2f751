//! Placeholder while the SQLite backend settles.
use crate::StoreError;

#[derive(Clone, Debug)]
pub struct PostgresStore;

impl PostgresStore {
    pub async fn connect(_url: &str) -> Result<crate::SqliteStore, StoreError> {
        unimplemented!()
    }
}
