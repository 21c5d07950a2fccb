//! `sluice inspect`: what the detectors find in one text, and how well they do on a
//! labelled dataset.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_engine::inspect::injection::{self, Origin};
use sluice_engine::inspect::{self, Finding};

/// Commands of `sluice inspect`.
#[derive(Debug, clap::Subcommand)]
pub enum InspectCommand {
    /// Show the findings (PII, secrets, injection signals) for one text, as JSON.
    Text(TextArgs),
    /// Score the detectors on a labelled JSON Lines dataset.
    Eval(EvalArgs),
}

/// Where a text comes from, as the detectors weigh it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginArg {
    /// Typed by the caller.
    User,
    /// A document or tool output.
    Untrusted,
}

impl From<OriginArg> for Origin {
    fn from(origin: OriginArg) -> Origin {
        match origin {
            OriginArg::User => Origin::User,
            OriginArg::Untrusted => Origin::Untrusted,
        }
    }
}

/// Options of `sluice inspect text`.
#[derive(Debug, clap::Args)]
pub struct TextArgs {
    /// The text; standard input when absent.
    pub text: Option<String>,
    /// Weigh the text as a user message or as untrusted content.
    #[arg(long, value_enum, default_value_t = OriginArg::User)]
    pub origin: OriginArg,
}

/// Options of `sluice inspect eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// JSON Lines, one object per line: `text`, and `label` (`benign` or `malicious`) for
    /// injection, or `spans` (`[{type, start, end}]`, character offsets) for PII and
    /// secrets; optional `origin` (`user` or `untrusted`).
    #[arg(long, value_name = "FILE")]
    pub dataset: PathBuf,
    /// The injection score from which a text counts as flagged.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// False positives and negatives listed per class, at most.
    #[arg(long, default_value_t = 5)]
    pub show: usize,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs an inspect command; exit 0 on success, 1 on any error.
pub fn main(command: InspectCommand) -> ExitCode {
    let result = match command {
        InspectCommand::Text(args) => text(&args),
        InspectCommand::Eval(args) => eval(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn finding_json(text: &str, f: &Finding) -> Value {
    json!({
        "class": f.class, "start": f.start, "end": f.end,
        "char_start": f.char_start, "char_end": f.char_end,
        "confidence": f.confidence, "validator": f.validator,
        "text": text.get(f.start..f.end).unwrap_or_default(),
    })
}

fn text(args: &TextArgs) -> anyhow::Result<()> {
    let text = match &args.text {
        Some(text) => text.clone(),
        None => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| anyhow::anyhow!("cannot read standard input: {e}"))?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    let findings = inspect::scan(&text);
    let (pii, secrets): (Vec<&Finding>, Vec<&Finding>) =
        findings.iter().partition(|f| f.kind == inspect::Kind::Pii);
    let assessment = injection::assess(&text, args.origin.into());
    let report = json!({
        "pii": pii.iter().map(|f| finding_json(&text, f)).collect::<Vec<_>>(),
        "secrets": secrets.iter().map(|f| finding_json(&text, f)).collect::<Vec<_>>(),
        "injection": {"score": assessment.score, "signals": assessment.signals},
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    text: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    spans: Option<Vec<GoldSpan>>,
    #[serde(default)]
    origin: Option<OriginArg>,
    /// Free-form provenance, ignored.
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoldSpan {
    #[serde(rename = "type")]
    class: String,
    start: usize,
    end: usize,
}

/// Counts for one class.
#[derive(Debug, Default, Clone)]
struct Tally {
    tp: usize,
    fp: usize,
    fn_: usize,
    false_positives: Vec<String>,
    false_negatives: Vec<String>,
}

impl Tally {
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// A rate over rows of one label; `None` when the dataset has no such rows (a TPR without
/// malicious rows means nothing).
fn rate(a: usize, of: usize) -> Option<f64> {
    (of > 0).then(|| a as f64 / of as f64)
}

fn shown(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_string(), |r| format!("{r:.3}"))
}

/// Injection counts, per origin.
#[derive(Debug, Default)]
struct Binary {
    tp: usize,
    fp: usize,
    tn: usize,
    fn_: usize,
    false_positives: Vec<String>,
    false_negatives: Vec<String>,
}

fn excerpt(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(120).collect();
    if flat.chars().count() > 120 {
        out.push('…');
    }
    out
}

fn eval(args: &EvalArgs) -> anyhow::Result<()> {
    let data = std::fs::read_to_string(&args.dataset)
        .map_err(|e| anyhow::anyhow!("cannot read `{}`: {e}", args.dataset.display()))?;
    let mut classes: BTreeMap<String, Tally> = BTreeMap::new();
    let mut injection_by_origin: BTreeMap<&'static str, Binary> = BTreeMap::new();
    let mut rows = 0usize;
    for (number, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: Row = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", args.dataset.display(), number + 1))?;
        rows += 1;
        let origin = row.origin.unwrap_or(OriginArg::User);
        if let Some(label) = &row.label {
            let malicious = match label.as_str() {
                "malicious" | "injection" | "jailbreak" => true,
                "benign" => false,
                other => anyhow::bail!(
                    "{}:{}: label `{other}` is neither `benign` nor `malicious`",
                    args.dataset.display(),
                    number + 1
                ),
            };
            let flagged = injection::assess(&row.text, origin.into()).score >= args.threshold;
            let key = match origin {
                OriginArg::User => "user",
                OriginArg::Untrusted => "untrusted",
            };
            let b = injection_by_origin.entry(key).or_default();
            match (malicious, flagged) {
                (true, true) => b.tp += 1,
                (false, false) => b.tn += 1,
                (false, true) => {
                    b.fp += 1;
                    b.false_positives.push(excerpt(&row.text));
                }
                (true, false) => {
                    b.fn_ += 1;
                    b.false_negatives.push(excerpt(&row.text));
                }
            }
        }
        if let Some(spans) = &row.spans {
            score_spans(&row.text, spans, &mut classes);
        }
    }
    let report = json!({
        "rows": rows,
        "threshold": args.threshold,
        "injection": injection_by_origin.iter().map(|(origin, b)| (origin.to_string(), json!({
            "tpr": rate(b.tp, b.tp + b.fn_), "fpr": rate(b.fp, b.tn + b.fp),
            "precision": ratio(b.tp, b.tp + b.fp),
            "tp": b.tp, "fp": b.fp, "tn": b.tn, "fn": b.fn_,
            "false_positives": b.false_positives.iter().take(args.show).collect::<Vec<_>>(),
            "false_negatives": b.false_negatives.iter().take(args.show).collect::<Vec<_>>(),
        }))).collect::<serde_json::Map<_, _>>(),
        "classes": classes.iter().map(|(class, t)| (class.clone(), json!({
            "precision": t.precision(), "recall": t.recall(), "f1": t.f1(),
            "tp": t.tp, "fp": t.fp, "fn": t.fn_,
            "false_positives": t.false_positives.iter().take(args.show).collect::<Vec<_>>(),
            "false_negatives": t.false_negatives.iter().take(args.show).collect::<Vec<_>>(),
        }))).collect::<serde_json::Map<_, _>>(),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{rows} rows from {}", args.dataset.display());
    for (origin, b) in &injection_by_origin {
        println!(
            "injection ({origin}, threshold {}): TPR {}  FPR {}  precision {:.3}  (tp {} fp {} tn {} fn {})",
            args.threshold,
            shown(rate(b.tp, b.tp + b.fn_)),
            shown(rate(b.fp, b.tn + b.fp)),
            ratio(b.tp, b.tp + b.fp),
            b.tp,
            b.fp,
            b.tn,
            b.fn_
        );
        for text in b.false_positives.iter().take(args.show) {
            println!("  false positive: {text}");
        }
        for text in b.false_negatives.iter().take(args.show) {
            println!("  false negative: {text}");
        }
    }
    if !classes.is_empty() {
        println!(
            "{:<24} {:>9} {:>9} {:>9} {:>6} {:>6} {:>6}",
            "class", "precision", "recall", "f1", "tp", "fp", "fn"
        );
        let mut all = Tally::default();
        for (class, t) in &classes {
            println!(
                "{class:<24} {:>9.3} {:>9.3} {:>9.3} {:>6} {:>6} {:>6}",
                t.precision(),
                t.recall(),
                t.f1(),
                t.tp,
                t.fp,
                t.fn_
            );
            all.tp += t.tp;
            all.fp += t.fp;
            all.fn_ += t.fn_;
        }
        println!(
            "{:<24} {:>9.3} {:>9.3} {:>9.3} {:>6} {:>6} {:>6}",
            "all",
            all.precision(),
            all.recall(),
            all.f1(),
            all.tp,
            all.fp,
            all.fn_
        );
        for (class, t) in &classes {
            for text in t.false_positives.iter().take(args.show) {
                println!("  {class} false positive: {text}");
            }
            for text in t.false_negatives.iter().take(args.show) {
                println!("  {class} false negative: {text}");
            }
        }
    }
    Ok(())
}

/// A predicted finding matches a gold span of the same class that it overlaps; each gold
/// span is matched at most once.
fn score_spans(text: &str, spans: &[GoldSpan], classes: &mut BTreeMap<String, Tally>) {
    let findings = inspect::scan(text);
    let mut matched = vec![false; spans.len()];
    for f in &findings {
        let hit = spans.iter().enumerate().position(|(i, g)| {
            !matched.get(i).copied().unwrap_or(true)
                && g.class == f.class
                && g.start < f.char_end
                && f.char_start < g.end
        });
        let tally = classes.entry(f.class.to_string()).or_default();
        match hit {
            Some(i) => {
                if let Some(m) = matched.get_mut(i) {
                    *m = true;
                }
                tally.tp += 1;
            }
            None => {
                tally.fp += 1;
                let value = text.get(f.start..f.end).unwrap_or_default();
                tally
                    .false_positives
                    .push(format!("`{value}` in: {}", excerpt(text)));
            }
        }
    }
    for (g, found) in spans.iter().zip(&matched) {
        if !found {
            let tally = classes.entry(g.class.clone()).or_default();
            tally.fn_ += 1;
            let value: String = text
                .chars()
                .skip(g.start)
                .take(g.end.saturating_sub(g.start))
                .collect();
            tally
                .false_negatives
                .push(format!("`{value}` in: {}", excerpt(text)));
        }
    }
}
