//! `sluice usage`: spend and what is left of every budget and rate limit, read from a running
//! gateway's `GET /admin/usage`.

use std::process::ExitCode;

use crate::meter::UsageRow;

/// Arguments of `sluice usage`.
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The admin bearer token (`admin.token`); also read from `SLUICE_ADMIN_TOKEN`. Without
    /// one, only a gateway on this machine answers.
    #[arg(long)]
    pub token: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command.
pub fn main(args: UsageArgs) -> ExitCode {
    match fetch(&args) {
        Ok(rows) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".to_string())
                );
            } else {
                print!("{}", table(&rows));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn fetch(args: &UsageArgs) -> anyhow::Result<Vec<UsageRow>> {
    let url = format!("{}/admin/usage", args.url.trim_end_matches('/'));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut request = reqwest::Client::new().get(&url);
        let token = args
            .token
            .clone()
            .or_else(|| std::env::var("SLUICE_ADMIN_TOKEN").ok());
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the gateway at `{url}`: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            anyhow::bail!("the gateway answered {status} for `{url}`: {}", body.trim());
        }
        response
            .json::<Vec<UsageRow>>()
            .await
            .map_err(|e| anyhow::anyhow!("the gateway's answer from `{url}` is not usage: {e}"))
    })
}

/// The rows as an aligned text table, one counter per line.
pub fn table(rows: &[UsageRow]) -> String {
    let mut lines = vec![[
        "scope".to_string(),
        "id".to_string(),
        "kind".to_string(),
        "window".to_string(),
        "used".to_string(),
        "reserved".to_string(),
        "limit".to_string(),
        "remaining".to_string(),
        "resets".to_string(),
    ]];
    for row in rows {
        let resets = time::OffsetDateTime::from_unix_timestamp(row.window_end)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        lines.push([
            row.scope.clone(),
            row.id.clone(),
            row.kind.clone(),
            row.window.clone(),
            number(row.used),
            number(row.reserved),
            number(row.limit),
            number(row.remaining),
            resets,
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|column| {
            lines
                .iter()
                .map(|line| line.get(column).map_or(0, |cell| cell.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no budgets or rate limits are configured)\n");
    }
    out
}

/// Whole numbers without decimals, others with up to four.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}
