//! `sluice audit query`: SQL over the audit trail, printed as a table, CSV or JSON.
//!
//! DuckDB admits one process per database file. When no gateway holds the file, the query
//! runs on it directly, read-only. When a running gateway holds it, the query runs over the
//! Parquet exports instead (`audit.export_dir`, exposed as the tables `decisions` and
//! `all_decisions`), which hold every closed day; today's live rows are then not included,
//! and a note on standard error says so.

use std::path::PathBuf;
use std::process::ExitCode;

use duckdb::{AccessMode, Connection};

use crate::audit::literal;
use crate::config::Config;

/// Options of `sluice audit query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The SQL (one query); or use `--file`.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub sql: Option<String>,
    /// A file holding the query, e.g. `examples/compliance/top_reasons.sql`.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The gateway's configuration, for `audit.path` and `audit.export_dir`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The audit database; overrides the configuration.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// The Parquet export directory; overrides the configuration.
    #[arg(long, value_name = "DIR")]
    pub exports: Option<PathBuf>,
    /// A query variable, `NAME=VALUE` (read with `getvariable('NAME')`); repeatable.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns.
    Table,
    /// RFC 4180 CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// Commands of `sluice audit`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Run SQL over the audit trail.
    Query(QueryArgs),
}

/// Runs an audit command; exit 0 on success, 1 on any error.
pub fn main(command: AuditCommand) -> ExitCode {
    let AuditCommand::Query(args) = command;
    match query(&args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Opens the database read-only, or the Parquet exports when the file is held.
fn connect(db: &PathBuf, exports: Option<&PathBuf>) -> anyhow::Result<Connection> {
    if !db.exists() {
        anyhow::bail!("the audit database `{}` does not exist", db.display());
    }
    let config = duckdb::Config::default()
        .access_mode(AccessMode::ReadOnly)?
        .with("autoinstall_known_extensions", "false")?
        .with("autoload_known_extensions", "false")?;
    match Connection::open_with_flags(db, config) {
        Ok(connection) => Ok(connection),
        Err(error) => {
            let Some(dir) = exports else {
                anyhow::bail!(
                    "cannot open the audit database `{}` ({error}); if a running gateway holds it, set `audit.export_dir` and query its Parquet exports",
                    db.display()
                );
            };
            eprintln!(
                "note: `{}` is in use ({error}); querying the Parquet exports in `{}`, which hold every closed day but not today's rows",
                db.display(),
                dir.display()
            );
            let connection = Connection::open_in_memory()?;
            connection.execute_batch(
                "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;",
            )?;
            let files = literal(&dir.join("decisions-*.parquet").to_string_lossy());
            connection.execute_batch(&format!(
                "CREATE VIEW decisions AS SELECT * FROM read_parquet({files});\
                 CREATE VIEW all_decisions AS SELECT * FROM decisions;"
            ))?;
            Ok(connection)
        }
    }
}

/// Runs the query and renders its result.
pub fn query(args: &QueryArgs) -> anyhow::Result<String> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let db = args.db.clone().unwrap_or(config.audit.path);
    let exports = args.exports.clone().or(config.audit.export_dir);
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", file.display()))?,
        (None, None) => anyhow::bail!("give the SQL or `--file FILE`"),
    };
    let connection = connect(&db, exports.as_ref())?;
    for var in &args.vars {
        let Some((name, value)) = var.split_once('=') else {
            anyhow::bail!("`--var {var}`: expected NAME=VALUE");
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            anyhow::bail!("`--var {var}`: the name must be letters, digits or `_`");
        }
        connection.execute_batch(&format!("SET VARIABLE {name} = {};", literal(value)))?;
    }
    let body = sql.trim().trim_end_matches(';').trim();
    // Every column as text, formatted by DuckDB itself.
    let wrapped = format!("SELECT COLUMNS(*)::VARCHAR FROM (\n{body}\n)");
    let mut statement = connection.prepare(&wrapped)?;
    let mut rows = statement.query([])?;
    let names: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    let mut table: Vec<Vec<Option<String>>> = Vec::new();
    while let Some(row) = rows.next()? {
        let cells = (0..names.len())
            .map(|i| row.get::<_, Option<String>>(i))
            .collect::<Result<Vec<_>, _>>()?;
        table.push(cells);
    }
    Ok(render(&names, &table, args.format))
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// Renders a result in `format`; NULL is empty in CSV, `NULL` in a table, `null` in JSON.
pub fn render(names: &[String], rows: &[Vec<Option<String>>], format: OutputFormat) -> String {
    match format {
        OutputFormat::Json => {
            let objects: Vec<serde_json::Value> = rows
                .iter()
                .map(|row| {
                    let map = names
                        .iter()
                        .zip(row)
                        .map(|(name, cell)| {
                            let value = cell.as_ref().map_or(serde_json::Value::Null, |c| {
                                serde_json::Value::String(c.clone())
                            });
                            (name.clone(), value)
                        })
                        .collect();
                    serde_json::Value::Object(map)
                })
                .collect();
            let mut out = serde_json::to_string_pretty(&objects).unwrap_or_default();
            out.push('\n');
            out
        }
        OutputFormat::Csv => {
            let mut out = names
                .iter()
                .map(|n| csv_cell(n))
                .collect::<Vec<_>>()
                .join(",");
            out.push('\n');
            for row in rows {
                let line: Vec<String> = row
                    .iter()
                    .map(|c| c.as_deref().map(csv_cell).unwrap_or_default())
                    .collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            out
        }
        OutputFormat::Table => {
            let cell = |c: &Option<String>| c.clone().unwrap_or_else(|| "NULL".to_string());
            let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
            for row in rows {
                for (width, c) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell(c).chars().count());
                }
            }
            let line = |cells: Vec<String>| {
                let padded: Vec<String> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect();
                format!("{}\n", padded.join("  ").trim_end())
            };
            let mut out = line(names.to_vec());
            out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
            for row in rows {
                out.push_str(&line(row.iter().map(cell).collect()));
            }
            out.push_str(&format!("({} rows)\n", rows.len()));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<String>, Vec<Vec<Option<String>>>) {
        (
            vec!["team".to_string(), "note".to_string()],
            vec![
                vec![Some("payments".to_string()), Some("a, \"b\"".to_string())],
                vec![None, Some("x".to_string())],
            ],
        )
    }

    #[test]
    fn results_render_as_table_csv_and_json() {
        let (names, rows) = sample();
        assert_eq!(
            render(&names, &rows, OutputFormat::Csv),
            "team,note\npayments,\"a, \"\"b\"\"\"\n,x\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&names, &rows, OutputFormat::Json)).unwrap();
        assert_eq!(json[0]["note"], "a, \"b\"");
        assert!(json[1]["team"].is_null());
        let table = render(&names, &rows, OutputFormat::Table);
        assert!(
            table.starts_with("team      note\n--------  ------\n"),
            "{table}"
        );
        assert!(
            table.contains("NULL") && table.ends_with("(2 rows)\n"),
            "{table}"
        );
    }
}
