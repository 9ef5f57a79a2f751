//! SQL both databases run as it is written (numbered `$n` parameters, `CAST` rather than
//! PostgreSQL's `::`). Each backend binds its own representation of a timestamp: SQLite keeps
//! microseconds since the epoch, PostgreSQL `timestamptz`.

/// A space and its ancestors: all a reset rule needs (its own reset, the nearest time zone).
/// `UNION` stops at a repeated id, so even a corrupt parent cycle ends. `$1`: the space.
pub(crate) const SPACE_CHAIN: &str = "WITH RECURSIVE chain(id) AS ( \
         SELECT id FROM spaces WHERE id = $1 \
         UNION SELECT p.parent_id FROM spaces p JOIN chain c ON p.id = c.id \
             WHERE p.parent_id IS NOT NULL) \
     SELECT s.id, s.name, s.parent_id, s.time_zone, s.capacity, s.daily_reset \
     FROM spaces s WHERE s.id IN (SELECT id FROM chain)";

pub(crate) const ALL_SPACES: &str =
    "SELECT s.id, s.name, s.parent_id, s.time_zone, s.capacity, s.daily_reset \
     FROM spaces s ORDER BY s.id";

/// `$1`: after this id (or from the first), `$2`: at most this many.
pub(crate) const SPACES_PAGE: &str =
    "SELECT s.id, s.name, s.parent_id, s.time_zone, s.capacity, s.daily_reset \
     FROM spaces s WHERE CAST($1 AS BIGINT) IS NULL OR s.id > $1 ORDER BY s.id LIMIT $2";

/// `$1`: after this id (or from the first), `$2`: at most this many.
pub(crate) const DOORWAYS_PAGE: &str = "SELECT id, name, exiting_to, entering_to FROM doorways \
     WHERE CAST($1 AS BIGINT) IS NULL OR id > $1 ORDER BY id LIMIT $2";

/// `$1`: the DPU.
pub(crate) const INSTALLATIONS: &str =
    "SELECT valid_from, valid_until, doorway_id FROM installations \
     WHERE dpu_id = $1 ORDER BY valid_from";

pub(crate) const DPU_KNOWN: &str = "SELECT 1 FROM dpus WHERE id = $1";

pub(crate) const TOTALS: &str = "SELECT (SELECT COUNT(*) FROM crossings), \
        (SELECT COUNT(*) FROM crossings WHERE doorway_id IS NULL), \
        (SELECT COUNT(*) FROM rejected)";

/// `$1`: only this DPU's, `$2`: only this reason's (either may be null), `$3`: how many.
pub(crate) const REJECTED: &str =
    "SELECT received_at, source, dpu_id, reason, detail, payload FROM rejected \
     WHERE (CAST($1 AS TEXT) IS NULL OR dpu_id = $1) \
       AND (CAST($2 AS TEXT) IS NULL OR reason = $2) \
     ORDER BY received_at DESC, id DESC LIMIT $3";

/// `$1`: now, `$2`: the start of the day, `$3`: only this DPU, `$4`: after this id,
/// `$5`: at most this many.
pub(crate) const DPUS: &str =
    "WITH ids AS (SELECT id AS dpu_id FROM dpus UNION SELECT dpu_id FROM dpu_status) \
     SELECT i.dpu_id, EXISTS (SELECT 1 FROM dpus d WHERE d.id = i.dpu_id), \
            s.online, s.status_at, s.last_seen, \
            (SELECT n.doorway_id FROM installations n WHERE n.dpu_id = i.dpu_id \
                AND n.valid_from <= $1 AND (n.valid_until IS NULL OR n.valid_until > $1)), \
            (SELECT COUNT(*) FROM crossings c \
                WHERE c.dpu_id = i.dpu_id AND c.ts >= $2) \
     FROM ids i LEFT JOIN dpu_status s ON s.dpu_id = i.dpu_id \
     WHERE (CAST($3 AS TEXT) IS NULL OR i.dpu_id = $3) \
       AND (CAST($4 AS TEXT) IS NULL OR i.dpu_id > $4) \
     ORDER BY i.dpu_id LIMIT $5";

pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO api_tokens (hash, role, name, created_at) VALUES ($1, $2, $3, $4)";

pub(crate) const TOKEN_ROLE: &str = "SELECT role FROM api_tokens WHERE hash = $1";

pub(crate) const TOKENS: &str = "SELECT substr(hash, 1, 8), name, role, created_at \
     FROM api_tokens ORDER BY created_at, hash";

pub(crate) const DELETE_TOKENS_BY_PREFIX: &str = "DELETE FROM api_tokens WHERE hash LIKE $1 || '%'";

pub(crate) const DELETE_TOKENS_BY_NAME: &str = "DELETE FROM api_tokens WHERE name = $1";

pub(crate) const PUT_DPU_SECRET: &str = "INSERT INTO dpu_secrets (dpu_id, hash, changed_at) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (dpu_id) DO UPDATE SET hash = excluded.hash, changed_at = excluded.changed_at";

pub(crate) const DPU_SECRET_HASH: &str =
    "SELECT hash FROM dpu_secrets WHERE dpu_id = $1 AND hash IS NOT NULL";

pub(crate) const WITHDRAW_DPU_SECRET: &str =
    "UPDATE dpu_secrets SET hash = NULL, changed_at = $2 WHERE dpu_id = $1 AND hash IS NOT NULL";

pub(crate) const DPU_SECRETS_CHANGED: &str = "SELECT dpu_id, changed_at FROM dpu_secrets \
     WHERE changed_at >= $1 ORDER BY changed_at, dpu_id";

pub(crate) const DPU_SECRET_HASHES: &str =
    "SELECT dpu_id, hash FROM dpu_secrets WHERE hash IS NOT NULL ORDER BY dpu_id";

/// A page's limit as SQL takes it.
pub(crate) fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
