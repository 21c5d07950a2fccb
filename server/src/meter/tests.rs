use std::sync::Barrier;

use super::*;

const UTC: jiff::tz::TimeZone = jiff::tz::TimeZone::UTC;

/// 2026-11-26 12:00:30 UTC.
const NOON: i64 = 1_795_694_430;

fn subject(key: &str, team: &str) -> Subject {
    Subject {
        key: key.to_string(),
        user: Some(format!("user-of-{key}")),
        team: Some(team.to_string()),
        agent: None,
    }
}

fn limit(scope: Scope, kind: Kind, window: Window, limit: f64) -> LimitConfig {
    LimitConfig::every(scope, kind, window, limit)
}

fn cost(dollars: f64) -> Usage {
    Usage {
        tokens: 0.0,
        cost_usd: dollars,
    }
}

#[test]
fn two_hundred_concurrent_calls_against_a_budget_of_fifty_let_fifty_through() {
    let ledger = Ledger::new(vec![limit(Scope::Team, Kind::CostUsd, Window::Day, 50.0)]);
    let barrier = Barrier::new(200);
    let admitted: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let (ledger, barrier) = (&ledger, &barrier);
                s.spawn(move || {
                    let who = subject(&format!("key-{}", i % 7), "research");
                    barrier.wait();
                    match ledger.reserve(&who, cost(1.0), NOON) {
                        Ok(reservation) => {
                            reservation.settle(cost(1.0), NOON);
                            true
                        }
                        Err(_) => false,
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(admitted.iter().filter(|a| **a).count(), 50);
    let state = ledger.state(&subject("key-0", "research"), NOON);
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].used, 50.0, "spend is the sum of settled costs");
}

#[test]
fn settling_below_the_estimate_frees_room_and_reservations_count_while_open() {
    let ledger = Ledger::new(vec![limit(Scope::Key, Kind::CostUsd, Window::Day, 10.0)]);
    let who = subject("k", "t");
    let first = ledger.reserve(&who, cost(6.0), NOON).unwrap();
    // The open reservation counts: a second call of 6 would overrun.
    let refused = ledger.reserve(&who, cost(6.0), NOON).unwrap_err();
    assert_eq!(refused.limit.used, 6.0);
    assert_eq!(refused.limit.scope, "key");
    assert_eq!(refused.limit.kind, "cost_usd");
    first.settle(cost(2.0), NOON);
    assert_eq!(ledger.state(&who, NOON)[0].used, 2.0);
    let second = ledger.reserve(&who, cost(6.0), NOON).unwrap();
    second.settle(cost(6.5), NOON);
    assert_eq!(ledger.state(&who, NOON)[0].used, 8.5);
}

#[test]
fn a_reservation_dropped_unsettled_is_charged_its_estimate() {
    let ledger = Ledger::new(vec![limit(
        Scope::Key,
        Kind::Tokens,
        Window::Month,
        1_000.0,
    )]);
    let who = subject("k", "t");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    drop(
        ledger
            .reserve(
                &who,
                Usage {
                    tokens: 300.0,
                    cost_usd: 0.0,
                },
                now,
            )
            .unwrap(),
    );
    assert_eq!(ledger.state(&who, now)[0].used, 300.0);
}

#[test]
fn rate_limits_reset_with_their_window_and_say_when() {
    let ledger = Ledger::new(vec![limit(
        Scope::User,
        Kind::Requests,
        Window::Minute,
        2.0,
    )]);
    let who = subject("k", "t");
    for _ in 0..2 {
        ledger
            .reserve(&who, Usage::default(), NOON)
            .unwrap()
            .settle(Usage::default(), NOON);
    }
    let refused = ledger.reserve(&who, Usage::default(), NOON).unwrap_err();
    assert_eq!(refused.retry_after_s, 30, "12:00:30 waits for 12:01:00");
    assert_eq!(refused.limit.id, "user-of-k");
    // The next minute starts empty.
    assert!(ledger.reserve(&who, Usage::default(), NOON + 30).is_ok());
}

#[test]
fn every_limit_must_have_room_or_nothing_is_reserved() {
    let ledger = Ledger::new(vec![
        limit(Scope::Key, Kind::CostUsd, Window::Day, 100.0),
        LimitConfig {
            id: Some("research".to_string()),
            ..limit(Scope::Team, Kind::CostUsd, Window::Day, 5.0)
        },
    ]);
    let researcher = subject("k1", "research");
    let refused = ledger.reserve(&researcher, cost(6.0), NOON).unwrap_err();
    assert_eq!(refused.limit.scope, "team");
    // The key's own limit kept nothing of the refused call.
    let state = ledger.state(&researcher, NOON);
    assert_eq!(state.iter().map(|l| l.used).sum::<f64>(), 0.0);
    // A team the id-bound limit does not name only meets the key limit.
    let other = subject("k2", "platform");
    assert_eq!(ledger.state(&other, NOON).len(), 1);
    assert!(ledger.reserve(&other, cost(6.0), NOON).is_ok());
}

#[test]
fn a_call_outliving_its_window_is_charged_to_the_window_it_ends_in() {
    let ledger = Ledger::new(vec![limit(Scope::Key, Kind::CostUsd, Window::Day, 10.0)]);
    let who = subject("k", "t");
    let reservation = ledger.reserve(&who, cost(4.0), NOON).unwrap();
    let tomorrow = NOON + 86_400;
    reservation.settle(cost(3.0), tomorrow);
    assert_eq!(ledger.state(&who, tomorrow)[0].used, 3.0);
}

#[test]
fn calendar_windows() {
    assert_eq!(Window::Minute.bounds(NOON, &UTC), (NOON - 30, NOON + 30));
    assert_eq!(Window::Hour.bounds(NOON, &UTC), (NOON - 30, NOON + 3_570));
    let (start, end) = Window::Month.bounds(NOON, &UTC);
    let date = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).unwrap().date();
    assert_eq!(date(start).to_string(), "2026-11-01");
    assert_eq!(date(end).to_string(), "2026-12-01");
    let december = Window::Month.bounds(end + 10, &UTC);
    assert_eq!(date(december.1).to_string(), "2027-01-01");
}

#[test]
fn usage_lists_every_bound_limit_and_each_counted_member() {
    let ledger = Ledger::new(vec![
        LimitConfig {
            id: Some("research".to_string()),
            ..limit(Scope::Team, Kind::CostUsd, Window::Month, 100.0)
        },
        limit(Scope::Key, Kind::Requests, Window::Minute, 5.0),
    ]);
    // Nothing used yet: the team's budget shows, members of the per-key limit do not.
    let rows = ledger.usage(NOON);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].id.as_str(), rows[0].remaining),
        ("research", 100.0)
    );
    let open = ledger
        .reserve(&subject("k1", "research"), cost(10.0), NOON)
        .unwrap();
    ledger
        .reserve(&subject("k2", "research"), cost(5.0), NOON)
        .unwrap()
        .settle(cost(4.0), NOON);
    let rows = ledger.usage(NOON);
    let ids: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.scope.as_str(), r.id.as_str()))
        .collect();
    assert_eq!(ids, [("key", "k1"), ("key", "k2"), ("team", "research")]);
    let team = &rows[2];
    assert_eq!(
        (team.used, team.reserved, team.remaining),
        (4.0, 10.0, 86.0)
    );
    assert_eq!(
        (team.window_start, team.window_end),
        Window::Month.bounds(NOON, &UTC)
    );
    assert_eq!((rows[0].used, rows[0].reserved), (0.0, 1.0));
    drop(open);
    assert_eq!(ledger.usage(NOON)[2].used, 14.0);
}

#[test]
fn prices_match_model_families_and_bedrock_ids_and_the_config_overrides_them() {
    use super::prices::{Price, Prices};
    let prices = Prices::new(&std::collections::BTreeMap::from([
        (
            "gpt-4o".to_string(),
            Price {
                input: 1.0,
                cached_input: None,
                output: 2.0,
                reasoning: None,
            },
        ),
        (
            "my-llama".to_string(),
            Price {
                input: 0.5,
                cached_input: None,
                output: 0.5,
                reasoning: None,
            },
        ),
    ]));
    let input = |model: &str| prices.of(model).map(|p| p.input);
    assert_eq!(input("gpt-4o"), Some(1.0), "the config overrides");
    assert_eq!(input("gpt-4o-2024-08-06"), Some(1.0));
    assert_eq!(
        input("gpt-4o-mini-2024-07-18"),
        Some(0.15),
        "the longest entry"
    );
    assert_eq!(input("gpt-4.1-nano"), Some(0.10));
    assert_eq!(input("o3-mini"), Some(1.10));
    assert_eq!(input("o1x"), None, "prefixes end at a boundary");
    assert_eq!(
        input("anthropic.claude-3-5-sonnet-20240620-v1:0"),
        Some(3.0)
    );
    assert_eq!(
        input("us.anthropic.claude-3-7-sonnet-20250219-v1:0"),
        Some(3.0)
    );
    assert_eq!(input("My-Llama-70b"), Some(0.5));
    assert_eq!(input("unknown-model"), None);
    let sonnet = prices.of("claude-sonnet-4-20250514").unwrap();
    // 1,000 input tokens of which 400 cached, 500 output tokens of which 200 reasoning.
    let tokens = super::prices::Tokens {
        input: 1_000,
        cached: 400,
        output: 500,
        reasoning: 200,
    };
    let cost = sonnet.cost(tokens);
    assert!((cost - (600.0 * 3.0 + 400.0 * 0.30 + 500.0 * 15.0) / 1e6).abs() < 1e-12);
    // A configured reasoning price applies to the reasoning part of the output.
    let priced = Price {
        reasoning: Some(30.0),
        ..sonnet
    };
    let cost = priced.cost(tokens);
    assert!(
        (cost - (600.0 * 3.0 + 400.0 * 0.30 + 300.0 * 15.0 + 200.0 * 30.0) / 1e6).abs() < 1e-12
    );
}

#[test]
fn saved_spend_comes_back_for_windows_still_open_and_limits_still_configured() {
    let limits = vec![
        limit(Scope::Key, Kind::CostUsd, Window::Day, 10.0),
        limit(Scope::Key, Kind::Requests, Window::Minute, 100.0),
    ];
    let ledger = Ledger::new(limits.clone());
    let who = subject("k", "t");
    ledger
        .reserve(&who, cost(1.0), NOON)
        .unwrap()
        .settle(cost(2.5), NOON);
    let open = ledger.reserve(&who, cost(1.0), NOON).unwrap();
    let before = ledger.changes();
    let saved = ledger.snapshot();
    // The open reservation is saved as spent.
    let day = saved.iter().find(|s| s.kind == Kind::CostUsd).unwrap();
    assert_eq!(day.used, 3.5);
    std::mem::forget(open);
    assert_eq!(ledger.changes(), before);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("budgets.json");
    assert!(saved::load(&path).unwrap().is_empty(), "no file yet");
    saved::save(&path, &saved).unwrap();
    let loaded = saved::load(&path).unwrap();
    assert_eq!(loaded, saved);

    // Restarted the same day, two minutes later: the day's spend is back, the minute's
    // requests are not (their window closed); a limit no longer configured is skipped.
    let restarted = Ledger::new(vec![limits[0].clone()]);
    assert_eq!(restarted.restore(&loaded, NOON + 120), 1);
    assert_eq!(restarted.state(&who, NOON + 120)[0].used, 3.5);
    let next_day = Ledger::new(limits);
    assert_eq!(next_day.restore(&loaded, NOON + 86_400), 0);

    std::fs::write(&path, "{").unwrap();
    let err = format!("{:#}", saved::load(&path).unwrap_err());
    assert!(
        err.contains("budgets.json") && err.contains("not valid"),
        "{err}"
    );
}

#[test]
fn headroom_reports_the_tightest_limit_of_each_kind() {
    let ledger = Ledger::new(vec![
        limit(Scope::Key, Kind::Requests, Window::Minute, 100.0),
        limit(Scope::Team, Kind::Requests, Window::Hour, 5.0),
        limit(Scope::Key, Kind::Tokens, Window::Day, 1_000.0),
    ]);
    let who = subject("k", "t");
    let usage = Usage {
        tokens: 250.0,
        cost_usd: 0.0,
    };
    let reservation = ledger.reserve(&who, usage, NOON).unwrap();
    let headroom = reservation.headroom();
    let requests = headroom.iter().find(|h| h.kind == Kind::Requests).unwrap();
    assert_eq!(
        (requests.limit, requests.remaining),
        (5.0, 4.0),
        "the team's hour is tighter"
    );
    assert_eq!(requests.reset_at, Window::Hour.bounds(NOON, &UTC).1);
    let tokens = headroom.iter().find(|h| h.kind == Kind::Tokens).unwrap();
    assert_eq!(tokens.remaining, 750.0);
    assert_eq!(headroom.len(), 2);
}

#[test]
fn a_concurrency_limit_counts_calls_in_flight_and_frees_room_when_they_end() {
    let ledger = Ledger::new(vec![LimitConfig {
        window: None,
        ..limit(Scope::Key, Kind::Concurrent, Window::Day, 2.0)
    }]);
    let who = subject("k", "t");
    let first = ledger.reserve(&who, Usage::default(), NOON).unwrap();
    let second = ledger
        .reserve(&who, Usage::default(), NOON + 3_600)
        .unwrap();
    let refused = ledger
        .reserve(&who, Usage::default(), NOON + 7_200)
        .unwrap_err();
    assert_eq!(refused.retry_after_s, 1);
    assert_eq!(refused.limit.window, "in_flight");
    first.settle(Usage::default(), NOON + 7_200);
    // Room again, and nothing accumulates: a concurrency limit has no spend.
    let third = ledger
        .reserve(&who, Usage::default(), NOON + 86_400 * 40)
        .unwrap();
    assert_eq!(
        ledger.state(&who, NOON)[0].used,
        2.0,
        "second and third in flight"
    );
    drop((second, third));
    assert_eq!(ledger.state(&who, NOON)[0].used, 0.0);
    assert!(
        ledger.snapshot().is_empty(),
        "calls in flight are not saved"
    );
}

#[test]
fn a_throttle_obligation_limits_the_key_per_minute_on_top_of_configured_limits() {
    let ledger = Ledger::new(vec![limit(Scope::Team, Kind::Requests, Window::Day, 100.0)]);
    let who = subject("k", "t");
    let throttle = sluice_engine::decision::Throttle {
        requests_per_minute: Some(2),
        tokens_per_minute: None,
    };
    for _ in 0..2 {
        ledger
            .reserve_throttled(&who, Usage::default(), NOON, Some(&throttle))
            .unwrap()
            .settle(Usage::default(), NOON);
    }
    let refused = ledger
        .reserve_throttled(&who, Usage::default(), NOON, Some(&throttle))
        .unwrap_err();
    assert_eq!(
        (
            refused.limit.scope.as_str(),
            refused.limit.kind.as_str(),
            refused.limit.limit
        ),
        ("key", "requests", 2.0)
    );
    assert_eq!(refused.retry_after_s, 30);
    // Without the obligation only the configured limits apply; the throttle's counters are
    // not configured limits, so they are neither shown nor saved.
    assert!(ledger.reserve(&who, Usage::default(), NOON).is_ok());
    assert!(ledger.usage(NOON).iter().all(|r| r.scope == "team"));
    assert!(ledger.snapshot().iter().all(|s| s.scope == Scope::Team));
    assert_eq!(ledger.state(&who, NOON).len(), 1);
    // The next minute has room again.
    assert!(
        ledger
            .reserve_throttled(&who, Usage::default(), NOON + 30, Some(&throttle))
            .is_ok()
    );
}

#[test]
fn a_shared_budget_is_drawn_from_by_its_keys_only() {
    let ledger = Ledger::new(vec![LimitConfig {
        id: Some("research-pool".to_string()),
        keys: vec!["k1".to_string(), "k2".to_string()],
        ..limit(Scope::Shared, Kind::CostUsd, Window::Month, 10.0)
    }]);
    ledger
        .reserve(&subject("k1", "a"), cost(1.0), NOON)
        .unwrap()
        .settle(cost(6.0), NOON);
    // k2, in another team, draws from the same budget.
    let refused = ledger
        .reserve(&subject("k2", "b"), cost(5.0), NOON)
        .unwrap_err();
    assert_eq!(
        (
            refused.limit.scope.as_str(),
            refused.limit.id.as_str(),
            refused.limit.used
        ),
        ("shared", "research-pool", 6.0)
    );
    // A key not listed is not limited by it.
    assert!(ledger.state(&subject("k3", "a"), NOON).is_empty());
    assert!(
        ledger
            .reserve(&subject("k3", "a"), cost(50.0), NOON)
            .is_ok()
    );
    let rows = ledger.usage(NOON);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].id.as_str(), rows[0].used), ("research-pool", 6.0));
    // Configuration mistakes are named.
    let missing = LimitConfig {
        keys: Vec::new(),
        ..ledger.limits[0].clone()
    };
    assert!(
        missing
            .problem()
            .unwrap()
            .contains("needs an `id` and the `keys`")
    );
    let stray = LimitConfig {
        keys: vec!["k1".to_string()],
        ..limit(Scope::Team, Kind::CostUsd, Window::Month, 1.0)
    };
    assert!(stray.problem().unwrap().contains("only a `shared` budget"));
}

#[test]
fn calendar_windows_follow_the_configured_time_zone_and_its_daylight_saving() {
    let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap().as_second();
    // 2026-11-26 12:00:30 UTC is 13:00:30 in Berlin (UTC+1): its day began at 23:00 UTC.
    assert_eq!(
        Window::Day.bounds(NOON, &berlin),
        (at("2026-11-25T23:00:00Z"), at("2026-11-26T23:00:00Z"))
    );
    assert_eq!(
        Window::Month.bounds(NOON, &berlin),
        (at("2026-10-31T23:00:00Z"), at("2026-11-30T23:00:00Z"))
    );
    // The day clocks go forward has 23 hours.
    let (start, end) = Window::Day.bounds(at("2027-03-28T12:00:00Z"), &berlin);
    assert_eq!(end - start, 23 * 3_600);
    // Half-hour zones have their own hours.
    let india = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
    assert_eq!(
        Window::Hour.bounds(NOON, &india).0,
        at("2026-11-26T11:30:00Z")
    );

    // A ledger in Berlin: 23:30 UTC on the 25th is already the 26th there.
    let ledger = Ledger::with_store(
        vec![limit(Scope::Key, Kind::Requests, Window::Day, 1.0)],
        None,
        berlin,
    );
    let who = subject("k", "t");
    ledger
        .reserve(&who, Usage::default(), at("2026-11-25T23:30:00Z"))
        .unwrap()
        .settle(Usage::default(), at("2026-11-25T23:30:00Z"));
    let refused = ledger
        .reserve(&who, Usage::default(), at("2026-11-26T20:00:00Z"))
        .unwrap_err();
    assert_eq!(
        refused.retry_after_s,
        3 * 3_600,
        "until Berlin midnight, 23:00 UTC"
    );
}

#[test]
fn a_rolling_window_forgets_spend_as_it_ages_out_bucket_by_bucket() {
    const HOUR: i64 = 3_600;
    // 5 hours in buckets of 5 minutes.
    let five_hours = limit(Scope::Key, Kind::CostUsd, Window::RollingHours(5), 10.0);
    assert_eq!(five_hours.problem(), None);
    let ledger = Ledger::new(vec![five_hours]);
    let who = subject("k", "t");
    let spend = |at: i64, dollars: f64| {
        ledger
            .reserve(&who, cost(0.0), at)
            .unwrap()
            .settle(cost(dollars), at)
    };
    let used = |at: i64| ledger.state(&who, at)[0].used;
    spend(NOON, 6.0);
    spend(NOON + 2 * HOUR, 3.0);
    assert_eq!(ledger.state(&who, NOON)[0].window, "rolling_5h");
    // Across midnight and a calendar day: a rolling window has no reset.
    assert_eq!(used(NOON + 2 * HOUR), 9.0);
    let refused = *ledger
        .reserve(&who, cost(1.5), NOON + 4 * HOUR)
        .unwrap_err();
    assert_eq!(refused.limit.used, 9.0);
    // Room may come back when the oldest bucket leaves: the end of the current one.
    let bucket_end = (NOON + 4 * HOUR).div_euclid(300) * 300 + 300;
    assert_eq!(refused.retry_after_s, (bucket_end - NOON - 4 * HOUR) as u64);
    // The noon spend leaves five hours after its bucket began (12:00 here), not before.
    let noon_bucket = NOON.div_euclid(300) * 300;
    assert_eq!(used(noon_bucket + 5 * HOUR - 1), 9.0);
    assert_eq!(used(noon_bucket + 5 * HOUR), 3.0);
    let later = ledger.reserve(&who, cost(7.0), noon_bucket + 5 * HOUR);
    let later = later.expect("the aged-out spend frees its room");
    later.settle(cost(7.0), noon_bucket + 5 * HOUR);
    assert_eq!(
        used(NOON + 7 * HOUR + 300),
        7.0,
        "only the last call is left"
    );
    assert_eq!(used(NOON + 13 * HOUR), 0.0);
}

#[test]
fn rolling_windows_are_saved_by_bucket_and_checked_for_their_length() {
    const HOUR: i64 = 3_600;
    let day = limit(Scope::Key, Kind::Tokens, Window::RollingHours(24), 1_000.0);
    let ledger = Ledger::new(vec![day.clone()]);
    let who = subject("k", "t");
    let tokens = |n: f64| Usage {
        tokens: n,
        cost_usd: 0.0,
    };
    ledger
        .reserve(&who, tokens(0.0), NOON)
        .unwrap()
        .settle(tokens(100.0), NOON);
    ledger
        .reserve(&who, tokens(0.0), NOON + 10 * HOUR)
        .unwrap()
        .settle(tokens(200.0), NOON + 10 * HOUR);
    let open = ledger
        .reserve(&who, tokens(50.0), NOON + 10 * HOUR)
        .unwrap();
    let saved = ledger.snapshot();
    std::mem::forget(open);
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].used, 350.0);
    assert_eq!(saved[0].buckets.len(), 2);
    let text = serde_json::to_string(&saved).unwrap();
    assert_eq!(serde_json::from_str::<Vec<Saved>>(&text).unwrap(), saved);

    // Restarted 20 hours after noon: all of it still counts (the open reservation as
    // spent at restart); 5 hours later the noon bucket has left, then the rest.
    let restarted = Ledger::new(vec![day.clone()]);
    assert_eq!(restarted.restore(&saved, NOON + 20 * HOUR), 1);
    assert_eq!(restarted.state(&who, NOON + 20 * HOUR)[0].used, 350.0);
    assert_eq!(restarted.state(&who, NOON + 25 * HOUR)[0].used, 250.0);
    let usage = restarted.usage(NOON + 25 * HOUR);
    assert_eq!(
        (usage[0].window.as_str(), usage[0].used),
        ("rolling_24h", 250.0)
    );
    assert_eq!(usage[0].window_end - usage[0].window_start, 24 * HOUR);
    assert_eq!(restarted.state(&who, NOON + 35 * HOUR)[0].used, 50.0);
    assert_eq!(restarted.state(&who, NOON + 45 * HOUR)[0].used, 0.0);
    // A bucket saved long ago is not restored into a window it left.
    let late = Ledger::new(vec![day]);
    late.restore(&saved, NOON + 30 * HOUR);
    assert_eq!(late.state(&who, NOON + 30 * HOUR)[0].used, 250.0);

    for hours in [0, 8_785] {
        let wrong = limit(Scope::Key, Kind::Tokens, Window::RollingHours(hours), 1.0);
        assert!(
            wrong.problem().unwrap().contains("1 to 8784 hours"),
            "{hours}"
        );
    }
    let yaml: LimitConfig =
        yaml_serde::from_str("{scope: key, kind: tokens, window: rolling_6h, limit: 5}").unwrap();
    assert_eq!(yaml.window, Some(Window::RollingHours(6)));
    let err = yaml_serde::from_str::<LimitConfig>(
        "{scope: key, kind: tokens, window: fortnight, limit: 5}",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown window `fortnight`"), "{err}");
}
