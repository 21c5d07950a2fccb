//! Hot-reload latency on a 1,000-rule Rego bundle.
//!
//! Measures (1) compile-only time: `Bundle::load` + `Policies::compile` of the bundle, and
//! (2) reload latency: from a policy file write to the new revision being active in the
//! store, through the real watcher with the default debounce (so the debounce window is
//! part of the number, as it is in production). Target: p95 ≤ 200 ms.
//!
//! Run with `cargo bench -p sluice-server --bench reload`.

use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::{Bundle, Policies};
use sluice_server::config::ReloadConfig;
use sluice_server::reload::{PolicyStore, spawn_watcher};

const FILES: usize = 10;
const RULES_PER_FILE: usize = 100;
const COMPILE_ITERATIONS: usize = 10;
const RELOAD_ITERATIONS: usize = 20;
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    for file in 0..FILES {
        std::fs::write(rule_file_path(dir.path(), file), rule_file(file, 0))?;
    }
    println!(
        "bundle: {} rules in {FILES} files",
        FILES.saturating_mul(RULES_PER_FILE)
    );

    let mut compile = Vec::with_capacity(COMPILE_ITERATIONS);
    for _ in 0..COMPILE_ITERATIONS {
        let started = Instant::now();
        let bundle = Bundle::load(dir.path())?;
        let policies = Policies::compile(&bundle, bundle.content_hash.clone())?;
        compile.push(started.elapsed());
        drop(policies);
    }
    report("load + compile", &mut compile);

    let config = ReloadConfig::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut latencies = runtime.block_on(async {
        let store = Arc::new(PolicyStore::open(dir.path())?);
        let watcher = spawn_watcher(Arc::clone(&store), config);
        // Let the watcher arm and finish its start-up check before timing anything.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut latencies = Vec::with_capacity(RELOAD_ITERATIONS);
        for iteration in 1..=RELOAD_ITERATIONS {
            let before = store.current().revision().to_string();
            let file = iteration % FILES;
            let started = Instant::now();
            std::fs::write(rule_file_path(dir.path(), file), rule_file(file, iteration))?;
            while store.current().revision() == before {
                if started.elapsed() > RELOAD_TIMEOUT {
                    return Err(format!(
                        "iteration {iteration}: no reload within {RELOAD_TIMEOUT:?}; status: {:?}",
                        store.status()
                    )
                    .into());
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            latencies.push(started.elapsed());
        }
        let failures = store.status().reloads.failures;
        watcher.stop().await;
        if failures > 0 {
            return Err(format!("{failures} reloads failed").into());
        }
        Ok::<_, Box<dyn Error>>(latencies)
    })?;
    report(
        &format!(
            "write → active (watcher, debounce {} ms)",
            config.debounce_ms
        ),
        &mut latencies,
    );
    Ok(())
}

fn rule_file_path(dir: &Path, file: usize) -> std::path::PathBuf {
    dir.join(format!("rules_{file:02}.rego"))
}

/// `RULES_PER_FILE` deny rules, each matching one model id; `version` changes the
/// messages so every write is a new bundle.
fn rule_file(file: usize, version: usize) -> String {
    let mut text = format!("package sluice.bench.f{file:02}\n\n");
    for rule in 0..RULES_PER_FILE {
        let n = file.saturating_mul(RULES_PER_FILE).saturating_add(rule);
        let _ = writeln!(
            text,
            "deny contains msg if {{\n\tinput.resource.id == \"model-{n}\"\n\tmsg := \"model-{n} is blocked (v{version})\"\n}}\n"
        );
    }
    text
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let percentile = |p: usize| {
        let index = samples
            .len()
            .saturating_mul(p)
            .div_ceil(100)
            .saturating_sub(1);
        samples.get(index).copied().unwrap_or_default()
    };
    let max = samples.last().copied().unwrap_or_default();
    println!(
        "{what}: n={} p50={:.1} ms p95={:.1} ms max={:.1} ms",
        samples.len(),
        ms(percentile(50)),
        ms(percentile(95)),
        ms(max)
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
