//! Content inspection cost: scanning a 4 KB prompt for every personal-data and secret
//! class and for injection signals (target ≤ 50 µs together), and the scan's throughput on 1 MB of prose (target ≥ 200 MB/s
//! per core). The prompt is realistic prose with a few findings in it; the 1 MB text is the
//! same prose repeated.
//!
//! Run: `cargo bench -p sluice-engine --bench inspect`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_engine::inspect;

const PROSE: &str = "Hi team, following up on yesterday's incident review. The checkout service \
started timing out around 14:05 UTC after the 2.3.1 deploy; p99 latency went from 180 ms to \
2.4 s and the error budget for the week is gone. Customer jane.doe@example.com reported that \
her payment was declined twice, and support confirmed the retry logic double-charged card \
4111 1111 1111 1111 before the circuit breaker opened. Please summarise the root cause, list \
the three most likely contributing factors, and draft a short apology we can send. Keep it \
under 200 words, friendly but precise, and do not promise a refund timeline yet. Also, can \
you check whether the config change in the payments repo (the one that lowered the pool size \
from 50 to 20) could explain the connection exhaustion we saw in the dashboards? Thanks! ";

/// A harder paragraph: a finding of most classes, and tokens that look like leetspeak
/// ("log4j", "1st"), which make the injection scan decode a leet variant too.
const MIXED: &str = "Hello, this is Maria Garcia from accounts. Please update the payee for \
invoice 7731: IBAN GB82 WEST 1234 5698 7654 32, phone +44 20 7946 0958, office at 221 Baker \
Street, London. My SSN for the W-9 is 123-45-6789 and the VPN gateway is 10.20.30.40. The \
log4j upgrade ships on the 1st; after that, rotate the staging password and summarise the \
remaining work for the 4th floor team, with owners and dates, in a short table. ";

fn text_of(size: usize) -> String {
    repeated(PROSE, size)
}

fn repeated(paragraph: &str, size: usize) -> String {
    let mut text = String::with_capacity(size + paragraph.len());
    while text.len() < size {
        text.push_str(paragraph);
    }
    text.truncate(text.floor_char_boundary(size));
    text
}

fn bench(c: &mut Criterion) {
    let prompt = text_of(4096);
    assert!(!inspect::scan(&prompt).is_empty());
    c.bench_function("scan/4KB prompt", |b| {
        b.iter(|| black_box(inspect::scan(black_box(&prompt))))
    });
    c.bench_function("inject/4KB prompt", |b| {
        b.iter(|| {
            black_box(inspect::injection::assess(
                black_box(&prompt),
                inspect::injection::Origin::User,
            ))
        })
    });
    c.bench_function("all/4KB prompt (PII, secrets, injection)", |b| {
        b.iter(|| {
            black_box(inspect::scan(black_box(&prompt)));
            black_box(inspect::injection::assess(
                black_box(&prompt),
                inspect::injection::Origin::User,
            ))
        })
    });
    // A short untrusted text (a tool result, as the MCP proxy inspects one per call): what
    // a scan costs before the text's length counts.
    let short = &PROSE[..PROSE.floor_char_boundary(200)];
    c.bench_function("all/200 B tool result", |b| {
        b.iter(|| {
            black_box(inspect::scan(black_box(short)));
            black_box(inspect::injection::assess(
                black_box(short),
                inspect::injection::Origin::Untrusted,
            ))
        })
    });
    let mixed = repeated(MIXED, 4096);
    assert!(inspect::scan(&mixed).len() >= 6 * 4);
    c.bench_function("scan/4KB mixed prompt", |b| {
        b.iter(|| black_box(inspect::scan(black_box(&mixed))))
    });
    c.bench_function("inject/4KB mixed prompt", |b| {
        b.iter(|| {
            black_box(inspect::injection::assess(
                black_box(&mixed),
                inspect::injection::Origin::User,
            ))
        })
    });
    c.bench_function(
        "all/4KB mixed prompt (most classes, leet-like tokens)",
        |b| {
            b.iter(|| {
                black_box(inspect::scan(black_box(&mixed)));
                black_box(inspect::injection::assess(
                    black_box(&mixed),
                    inspect::injection::Origin::User,
                ))
            })
        },
    );
    // A typical chat input: a short user message, as the gateway inspects every call.
    let short: Option<sluice_engine::DecisionInput> = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/inputs/prompt-allowed.json"
    ))
    .ok()
    .and_then(|text| serde_json::from_str(&text).ok());
    if let Some(short) = short {
        c.bench_function("inspect_input/short chat input", |b| {
            b.iter(|| {
                let mut input = short.clone();
                inspect::inspect_input(&mut input);
                black_box(input)
            })
        });
    }
    let clean = prompt
        .replace("jane.doe@example.com", "the customer")
        .replace("4111 1111 1111 1111", "her card");
    c.bench_function("scan/4KB prompt without findings", |b| {
        b.iter(|| black_box(inspect::scan(black_box(&clean))))
    });
    // Text that is not ASCII takes the slower paths (NFKC, homoglyph folding, engines that
    // must read Unicode word boundaries): 64 KB of French and of Russian, as documents.
    for (language, paragraph) in [
        (
            "French",
            "Révèle-moi la vérité sur l'été à Genève, s'il te plaît, et décris les châteaux. ",
        ),
        (
            "Russian",
            "Покажи мне, как настроить систему резервного копирования на сервере. ",
        ),
    ] {
        let document = repeated(paragraph, 64 << 10);
        c.bench_function(&format!("inject/64KB {language} document"), |b| {
            b.iter(|| {
                black_box(inspect::injection::assess(
                    black_box(&document),
                    inspect::injection::Origin::Untrusted,
                ))
            })
        });
    }
    // A document as mail and tickets are written: paragraphs of a few lines, each of which
    // the untrusted-content classifier scores as well as the whole.
    let letter = repeated(
        "Покажи мне, как настроить систему резервного копирования на сервере.\n\
         Проверь журналы и отчёты за прошлую неделю.\n\
         Сообщи команде о результатах до пятницы.\n\n",
        64 << 10,
    );
    c.bench_function("inject/64KB Russian document in paragraphs", |b| {
        b.iter(|| {
            black_box(inspect::injection::assess(
                black_box(&letter),
                inspect::injection::Origin::Untrusted,
            ))
        })
    });
    let large = text_of(1 << 20);
    let mut group = c.benchmark_group("scan/throughput");
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.sample_size(20);
    group.bench_function("1MB prose, two findings per 770-byte paragraph", |b| {
        b.iter(|| black_box(inspect::scan(black_box(&large))))
    });
    let large_clean = large
        .replace("jane.doe@example.com", "the customer")
        .replace("4111 1111 1111 1111", "her card");
    group.throughput(Throughput::Bytes(large_clean.len() as u64));
    group.bench_function("1MB prose without findings", |b| {
        b.iter(|| black_box(inspect::scan(black_box(&large_clean))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
