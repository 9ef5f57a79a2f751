//! What storage can fail with, in domain words where the caller can act on it.

use roomer_occupancy::{DoorwayId, DpuId, SpaceId};

/// Errors from storage. Messages may contain database internals: log them, do not show them
/// to HTTP clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("invalid layout: {0}")]
    Layout(#[from] roomer_occupancy::LayoutError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The SQLite file was deleted or replaced while open: writing into it would be lost.
    #[error(
        "the database file {0} was deleted or replaced while in use; restore it, or restart \
         to open the file now at that path"
    )]
    FileGone(String),
    /// A change names something that does not exist.
    #[error(transparent)]
    NotFound(#[from] Missing),
    /// A layout change would leave something dangling (a doorway without its space, …).
    #[error(transparent)]
    InUse(#[from] InUse),
}

/// What a change named that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("space {0} does not exist")]
    Space(SpaceId),
    #[error("doorway {0} does not exist")]
    Doorway(DoorwayId),
    #[error("DPU {0} is not declared")]
    Dpu(DpuId),
    /// A token selector by id shorter than 8 hex digits (it could name several tokens).
    #[error("a token id is at least 8 hex digits, as `roomer token list` shows; got {0:?}")]
    TokenId(String),
}

/// Why a layout element cannot be deleted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InUse {
    #[error("Outside (space 0) always exists")]
    Outside,
    #[error("space {space} is a side of doorway {doorway}; delete or change the doorway first")]
    SideOfDoorway { space: SpaceId, doorway: DoorwayId },
    #[error("space {space} is the parent of space {child}")]
    Parent { space: SpaceId, child: SpaceId },
    #[error("doorway {0} is in a DPU's installation history; change that history first")]
    Installed(DoorwayId),
}

impl StoreError {
    /// Whether the connection a statement used turned out to be closed or ended by the
    /// server (restarted, or `pg_terminate_backend`): the statement never ran, or ran in a
    /// transaction that is now rolled back, so a read or a `BEGIN` can simply be tried again
    /// on another connection.
    pub(crate) fn is_lost_connection(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Io(_) | sqlx::Error::Protocol(_)) => true,
            // Connection exceptions; the server shutting down or ending this session.
            Self::Database(sqlx::Error::Database(e)) => e.code().is_some_and(|code| {
                code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02")
            }),
            _ => false,
        }
    }

    /// Whether this is the storage failing rather than the data it was given: the database
    /// is unreachable, full, read-only, busy, restarting or refusing the login. Such faults
    /// heal (the disk is freed, the server comes back) and what failed must simply be tried
    /// again; every other error would fail the same way however often it is tried.
    pub fn is_storage_fault(&self) -> bool {
        let database = match self {
            Self::Database(e) => e,
            Self::UnsupportedUrl(_) | Self::Migration(_) | Self::FileGone(_) => return true,
            Self::Layout(_) | Self::Corrupt(_) | Self::NotFound(_) | Self::InUse(_) => {
                return false
            }
        };
        match database {
            sqlx::Error::Database(e) => match e.code() {
                // SQLite's result codes are numbers (the primary code in the low byte): busy,
                // locked, out of memory, read-only, I/O, full, cannot open, not a database.
                Some(code) => match code.parse::<u32>() {
                    Ok(sqlite) => matches!(sqlite & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 26),
                    // PostgreSQL's SQLSTATE classes: connection, invalid transaction state,
                    // authorization, transaction rollback, insufficient resources, operator
                    // intervention (shutdown), system error.
                    Err(_) => matches!(
                        &code[..code.len().min(2)],
                        "08" | "25" | "28" | "40" | "53" | "57" | "58"
                    ),
                },
                None => true,
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Configuration(_) => true,
            _ => false,
        }
    }
}
