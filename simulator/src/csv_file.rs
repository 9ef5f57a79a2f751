//! Reading crossings from a CSV file like the reference `dpu_data.csv`.

use crate::error::SimError;
use roomer_occupancy::payload::parse_timestamp;
use roomer_occupancy::{Crossing, Direction, DpuId};
use std::path::Path;

/// Reads every crossing of a CSV file whose header names `timestamp`, `direction` and
/// `dpu_id` (in any order, case-insensitively; other columns are ignored). Values may be
/// quoted or not. Rows are kept in file order and exact repeats are kept too: they are a
/// DPU's retransmissions, which the backend must deduplicate, so a faithful replay sends them.
pub fn read_csv(path: &Path) -> Result<Vec<Crossing>, SimError> {
    let csv_error = |source| SimError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(csv_error)?;
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or_else(|| SimError::MissingColumn {
                path: path.to_owned(),
                column: name,
            })
    };
    let columns = Columns {
        timestamp: column("timestamp")?,
        direction: column("direction")?,
        dpu_id: column("dpu_id")?,
    };

    let mut crossings = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(crossings),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                let crossing = columns.parse(&record).map_err(|reason| SimError::BadRow {
                    path: path.to_owned(),
                    line,
                    reason,
                })?;
                crossings.push(crossing);
            }
            // A structural problem (a row with the wrong number of fields, invalid UTF-8)
            // still knows where it is.
            Err(e) => {
                return Err(match e.position() {
                    Some(position) => SimError::BadRow {
                        path: path.to_owned(),
                        line: position.line(),
                        reason: e.to_string(),
                    },
                    None => csv_error(e),
                })
            }
        }
    }
}

/// Writes `rows` in the reference data's format (`"timestamp","direction","dpu_id"`, every
/// field quoted, timestamps to the millisecond in UTC), in their order.
pub fn write_csv(path: &Path, rows: &[Crossing]) -> Result<(), SimError> {
    let csv_error = |source| SimError::Csv {
        path: path.to_owned(),
        source,
    };
    let mut writer = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .from_path(path)
        .map_err(csv_error)?;
    writer
        .write_record(["timestamp", "direction", "dpu_id"])
        .map_err(csv_error)?;
    for row in rows {
        let ts = row.ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let direction = row.direction.as_i64().to_string();
        writer
            .write_record([ts.as_str(), direction.as_str(), row.dpu.as_str()])
            .map_err(csv_error)?;
    }
    writer.flush().map_err(|e| csv_error(e.into()))
}

struct Columns {
    timestamp: usize,
    direction: usize,
    dpu_id: usize,
}

impl Columns {
    fn parse(&self, record: &csv::StringRecord) -> Result<Crossing, String> {
        let field = |index: usize, name: &str| {
            record
                .get(index)
                .ok_or_else(|| format!("the row has no {name} field"))
        };
        let timestamp = field(self.timestamp, "timestamp")?;
        let ts = parse_timestamp(timestamp)
            .map_err(|_| format!("timestamp {timestamp:?} is not RFC 3339"))?;
        let direction = field(self.direction, "direction")?;
        let direction = direction
            .parse()
            .ok()
            .and_then(Direction::from_i64)
            .ok_or_else(|| format!("direction {direction:?} is not 1 or -1"))?;
        let dpu = DpuId::new(field(self.dpu_id, "dpu_id")?).map_err(|e| e.to_string())?;
        Ok(Crossing::new(dpu, ts, direction, None))
    }
}
