//! Per-decision cost on the default policy repo (`policies/`), Rego and Cedar together, for
//! each example input under `examples/inputs/`; plus the parts (Rego alone, Cedar alone,
//! input conversion) and a whole-bundle compile; and one decision made after a pause, as
//! a gateway makes it.
//!
//! Run: `cargo bench -p sluice-engine --bench decision`. Target: p50 ≤ 30 µs per decision.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "benchmark setup: a broken setup must stop the run loudly"
)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_engine::{Bundle, DecisionInput, Policies};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn inputs() -> Vec<(String, DecisionInput)> {
    let mut out = Vec::new();
    let dir = repo().join("examples/inputs");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    for path in paths {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(input) = serde_json::from_str(&text) else {
            continue;
        };
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, input));
    }
    out
}

fn policies() -> Policies {
    let bundle = Bundle::load(&repo().join("policies")).expect("the default policies load");
    Policies::compile(&bundle, "bench".to_string()).expect("the default policies compile")
}

/// Prints p50/p99 of single decisions measured one by one, which criterion's mean hides.
/// The decisions that check the VM against the interpreter come first and are not timed.
fn percentiles(policies: &Policies, name: &str, input: &DecisionInput) {
    policies.finish_vm_check(input);
    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let started = Instant::now();
            black_box(policies.evaluate(black_box(input)));
            started.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "decision/{name}: p50 {:.1} µs, p99 {:.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    );
}

/// The p50 of a decision made after the thread has slept `pause`, as a gateway's worker
/// waits on the network between decisions: where idle CPUs hand control to another
/// program (a hypervisor's host), caches and branch predictors are then cold.
fn after_pause(policies: &Policies, name: &str, input: &DecisionInput, pause: Duration) {
    policies.finish_vm_check(input);
    let mut samples: Vec<Duration> = (0..2_000)
        .map(|_| {
            std::thread::sleep(pause);
            let started = Instant::now();
            black_box(policies.evaluate(black_box(input)));
            started.elapsed()
        })
        .collect();
    samples.sort();
    println!(
        "decision/{name} after a {} µs pause: p50 {:.1} µs",
        pause.as_micros(),
        samples[samples.len() / 2].as_secs_f64() * 1e6
    );
}

fn bench(c: &mut Criterion) {
    let policies = policies();
    let inputs = inputs();
    assert!(
        !inputs.is_empty(),
        "no example inputs under examples/inputs"
    );
    if let Some((name, input)) = inputs
        .iter()
        .find(|(name, _)| name == "tool-call-permitted")
    {
        after_pause(&policies, name, input, Duration::from_micros(300));
    }
    // The same bundle served by the Rego VM (`rego_evaluator: vm`).
    let mut vm_bundle = Bundle::load(&repo().join("policies")).unwrap();
    vm_bundle.manifest.sluice.rego_evaluator = sluice_engine::bundle::RegoEvaluator::Vm;
    let vm_policies = Policies::compile(&vm_bundle, "bench-vm".to_string()).unwrap();
    assert!(vm_policies.rego().is_some_and(|r| r.serves_with_vm()));
    for (name, input) in &inputs {
        percentiles(&policies, name, input);
        percentiles(&vm_policies, &format!("{name} (vm)"), input);
        c.bench_function(&format!("decision/{name}"), |b| {
            b.iter(|| policies.evaluate(black_box(input)))
        });
        c.bench_function(&format!("decision_vm/{name}"), |b| {
            b.iter(|| vm_policies.evaluate(black_box(input)))
        });
    }
    if let Some((_, input)) = inputs.first() {
        if let Some(rego) = policies.rego() {
            c.bench_function("rego_only", |b| {
                b.iter(|| {
                    let value = sluice_engine::policies::to_rego_value(black_box(input)).unwrap();
                    rego.evaluate(value)
                })
            });
        }
        if let Some(cedar) = policies.cedar() {
            c.bench_function("cedar_only", |b| {
                b.iter(|| cedar.evaluate(black_box(input)))
            });
            c.bench_function("cedar_parts/request_and_entities", |b| {
                b.iter(|| cedar.request(black_box(input)))
            });
            let (request, entities) = cedar.request(input).unwrap();
            c.bench_function("cedar_parts/authorize", |b| {
                b.iter(|| {
                    cedar_policy::Authorizer::new().is_authorized(
                        black_box(&request),
                        cedar.policies(),
                        &entities,
                    )
                })
            });
            println!("static entities: {}", cedar.entities().len());
        }
        // The two ways regorus shares a compiled policy across threads: a prepared engine
        // cloned per evaluation (what Sluice uses: it carries a per-bundle time limit) and
        // `CompiledPolicy::eval_with_input` (its limit is process-global).
        let bundle = Bundle::load(&repo().join("policies")).unwrap();
        let options = sluice_engine::rego::LoadOptions {
            with_tests: false,
            coverage: false,
        };
        let mut engine = sluice_engine::rego::load_engine(&bundle, options)
            .unwrap()
            .engine;
        let compiled = engine
            .compile_with_entrypoint(&sluice_engine::rego::ENTRYPOINT.into())
            .unwrap();
        c.bench_function("rego_strategy/compiled_policy", |b| {
            b.iter(|| {
                let value = sluice_engine::policies::to_rego_value(black_box(input)).unwrap();
                compiled.eval_with_input(value).unwrap()
            })
        });
        match regorus::languages::rego::compiler::Compiler::compile_from_policy(
            &compiled,
            &[sluice_engine::rego::ENTRYPOINT],
        ) {
            Ok(program) => {
                let data = engine.get_data();
                let mut vm = regorus::rvm::RegoVM::new();
                vm.load_program(program);
                vm.set_data(data).unwrap();
                let value = sluice_engine::policies::to_rego_value(input).unwrap();
                vm.set_input(value.clone());
                let via_vm = vm.execute_entry_point_by_name(sluice_engine::rego::ENTRYPOINT);
                let via_interp = compiled.eval_with_input(value);
                println!(
                    "rvm agrees with interpreter: {}",
                    via_vm.as_ref().ok() == via_interp.as_ref().ok()
                );
                c.bench_function("rego_strategy/rvm", |b| {
                    b.iter(|| {
                        let value =
                            sluice_engine::policies::to_rego_value(black_box(input)).unwrap();
                        vm.set_input(value);
                        vm.execute_entry_point_by_name(sluice_engine::rego::ENTRYPOINT)
                    })
                });
            }
            Err(e) => println!("rvm cannot compile the default policies: {e}"),
        }
        engine.set_input(regorus::Value::new_object());
        let _ = engine.eval_rule(sluice_engine::rego::ENTRYPOINT.to_string());
        c.bench_function("rego_strategy/engine_clone", |b| {
            b.iter(|| {
                let value = sluice_engine::policies::to_rego_value(black_box(input)).unwrap();
                let mut engine = engine.clone();
                engine.set_input(value);
                engine
                    .eval_rule(sluice_engine::rego::ENTRYPOINT.to_string())
                    .unwrap()
            })
        });
        c.bench_function("input_to_rego_value", |b| {
            b.iter(|| sluice_engine::policies::to_rego_value(black_box(input)))
        });
    }
    let bundle = Bundle::load(&repo().join("policies")).expect("the default policies load");
    c.bench_function("compile_default_bundle", |b| {
        b.iter(|| Policies::compile(black_box(&bundle), String::new()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
