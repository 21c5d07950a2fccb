//! Keeping the audit database bounded: closed days rotated to Parquet files, rows and
//! files past the retention period deleted. Runs on the writer's connection, between
//! batches, so it never competes with appends.
//!
//! A day is closed once it is over (UTC). Its rows are copied to
//! `<export_dir>/decisions-YYYY-MM-DD[-N].parquet` (written under a temporary name and then
//! renamed, so a reader never sees half a file) and only then deleted from the live table:
//! a crash in between leaves a row in both places, never in neither. The view
//! `all_decisions` is the live table and every export together.

use std::path::Path;

use duckdb::Connection;

use super::{AuditConfig, literal};

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Parquet files written.
    pub exported_files: Vec<String>,
    /// Rows moved from the live table to Parquet.
    pub exported_rows: usize,
    /// Rows deleted for being past the retention period.
    pub expired_rows: usize,
    /// Parquet files deleted for being past the retention period.
    pub expired_files: usize,
}

/// The `YYYY-MM-DD` of an export's name (ISO dates compare as text).
fn file_day(name: &str) -> Option<&str> {
    name.strip_prefix("decisions-")?.get(..10)
}

/// Today (UTC) as `YYYY-MM-DD`, computed here: DuckDB's own date functions with time zones
/// need the ICU extension, which is not compiled in.
fn utc_day(offset_days: i64) -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::days(offset_days))
        .date()
        .to_string()
}

/// One pass: export closed days (when `export_dir` is set), then apply `retention_days`.
pub fn maintain(connection: &Connection, config: &AuditConfig) -> anyhow::Result<Report> {
    let mut report = Report::default();
    if let Some(dir) = &config.export_dir {
        export_closed_days(connection, dir, &mut report)?;
    }
    if let Some(days) = config.retention_days {
        let cutoff = utc_day(i64::from(days));
        report.expired_rows = connection.execute(
            &format!(
                "DELETE FROM decisions WHERE time < {}::TIMESTAMP",
                literal(&cutoff)
            ),
            [],
        )?;
        if let Some(dir) = &config.export_dir {
            for entry in std::fs::read_dir(dir)?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".parquet")
                    && file_day(&name).is_some_and(|d| d < cutoff.as_str())
                {
                    std::fs::remove_file(entry.path())?;
                    report.expired_files += 1;
                }
            }
        }
    }
    if let Some(dir) = &config.export_dir {
        refresh_view(connection, dir)?;
    } else {
        connection
            .execute_batch("CREATE OR REPLACE VIEW all_decisions AS SELECT * FROM decisions")?;
    }
    Ok(report)
}

fn export_closed_days(
    connection: &Connection,
    dir: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut statement = connection.prepare(&format!(
        "SELECT DISTINCT strftime(time, '%Y-%m-%d') FROM decisions \
         WHERE time < {}::TIMESTAMP ORDER BY 1",
        literal(&utc_day(0))
    ))?;
    let days: Vec<String> = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    for day in days {
        let mut n = 0;
        let target = loop {
            let name = if n == 0 {
                format!("decisions-{day}.parquet")
            } else {
                format!("decisions-{day}-{n}.parquet")
            };
            let path = dir.join(&name);
            if !path.exists() {
                break path;
            }
            n += 1;
        };
        let partial = target.with_extension("parquet.partial");
        let rows = connection.execute(
            &format!(
                "COPY (SELECT * FROM decisions WHERE strftime(time, '%Y-%m-%d') = {day} ORDER BY time) \
                 TO {path} (FORMAT parquet)",
                day = literal(&day),
                path = literal(&partial.to_string_lossy()),
            ),
            [],
        )?;
        std::fs::rename(&partial, &target)?;
        connection.execute(
            &format!(
                "DELETE FROM decisions WHERE strftime(time, '%Y-%m-%d') = {}",
                literal(&day)
            ),
            [],
        )?;
        report.exported_rows += rows;
        report
            .exported_files
            .push(target.to_string_lossy().into_owned());
    }
    Ok(())
}

fn refresh_view(connection: &Connection, dir: &Path) -> anyhow::Result<()> {
    let any = std::fs::read_dir(dir)?
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".parquet"));
    let sql = if any {
        format!(
            "CREATE OR REPLACE VIEW all_decisions AS \
             SELECT * FROM decisions UNION ALL BY NAME \
             SELECT * FROM read_parquet({})",
            literal(&dir.join("decisions-*.parquet").to_string_lossy())
        )
    } else {
        "CREATE OR REPLACE VIEW all_decisions AS SELECT * FROM decisions".to_string()
    };
    connection.execute_batch(&sql)?;
    Ok(())
}
