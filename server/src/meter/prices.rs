//! Model prices, for the cost of each call (audit rows, `cost_usd` budgets).
//!
//! Sluice ships providers' list prices in US dollars per million tokens, as published in
//! 2025; `prices` in the config adds models or overrides these (negotiated rates, new
//! models). A model is priced by the longest entry its name starts with, after any Bedrock
//! region and vendor prefixes (`us.anthropic.`), so dated snapshots
//! (`gpt-4o-2024-08-06`) take their family's price. A model with no price costs 0, and
//! `cost_usd` budgets do not count it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A model's price in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// Input (prompt) tokens.
    pub input: f64,
    /// Input tokens served from the provider's cache; the input price when unset.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// Output tokens.
    pub output: f64,
    /// Reasoning tokens (a part of the output tokens); the output price when unset, as
    /// providers bill them today.
    #[serde(default)]
    pub reasoning: Option<f64>,
}

/// A call's tokens as the upstream counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Prompt tokens served from a cache.
    pub cached: u64,
    /// Output tokens, reasoning ones included.
    pub output: u64,
    /// Reasoning tokens.
    pub reasoning: u64,
}

impl Price {
    /// The cost of a call's tokens.
    pub fn cost(&self, tokens: Tokens) -> f64 {
        let cached = tokens.cached.min(tokens.input);
        let reasoning = tokens.reasoning.min(tokens.output);
        let per_token = |price: f64, tokens: u64| price * tokens as f64 / 1e6;
        per_token(self.input, tokens.input - cached)
            + per_token(self.cached_input.unwrap_or(self.input), cached)
            + per_token(self.output, tokens.output - reasoning)
            + per_token(self.reasoning.unwrap_or(self.output), reasoning)
    }
}

const fn price(input: f64, cached_input: f64, output: f64) -> Price {
    Price {
        input,
        cached_input: Some(cached_input),
        output,
        reasoning: None,
    }
}

/// List prices (USD per million tokens: input, cached input, output).
const SHIPPED: &[(&str, Price)] = &[
    ("gpt-4o", price(2.50, 1.25, 10.00)),
    ("gpt-4o-mini", price(0.15, 0.075, 0.60)),
    ("gpt-4.1", price(2.00, 0.50, 8.00)),
    ("gpt-4.1-mini", price(0.40, 0.10, 1.60)),
    ("gpt-4.1-nano", price(0.10, 0.025, 0.40)),
    ("gpt-4-turbo", price(10.00, 10.00, 30.00)),
    ("gpt-3.5-turbo", price(0.50, 0.50, 1.50)),
    ("o1", price(15.00, 7.50, 60.00)),
    ("o1-mini", price(1.10, 0.55, 4.40)),
    ("o3", price(2.00, 0.50, 8.00)),
    ("o3-mini", price(1.10, 0.55, 4.40)),
    ("o4-mini", price(1.10, 0.275, 4.40)),
    ("text-embedding-3-small", price(0.02, 0.02, 0.0)),
    ("text-embedding-3-large", price(0.13, 0.13, 0.0)),
    ("claude-3-haiku", price(0.25, 0.03, 1.25)),
    ("claude-3-5-haiku", price(0.80, 0.08, 4.00)),
    ("claude-3-5-sonnet", price(3.00, 0.30, 15.00)),
    ("claude-3-7-sonnet", price(3.00, 0.30, 15.00)),
    ("claude-sonnet-4", price(3.00, 0.30, 15.00)),
    ("claude-3-opus", price(15.00, 1.50, 75.00)),
    ("claude-opus-4", price(15.00, 1.50, 75.00)),
];

/// The price table: the shipped prices with the config's on top.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    table: BTreeMap<String, Price>,
}

impl Prices {
    /// The shipped prices, overridden and extended by `configured`.
    pub fn new(configured: &BTreeMap<String, Price>) -> Prices {
        let mut table: BTreeMap<String, Price> = SHIPPED
            .iter()
            .map(|(model, price)| (model.to_string(), *price))
            .collect();
        table.extend(
            configured
                .iter()
                .map(|(model, price)| (model.to_ascii_lowercase(), *price)),
        );
        Prices { table }
    }

    /// The price of upstream model `model`, if known.
    pub fn of(&self, model: &str) -> Option<Price> {
        let mut name = model.to_ascii_lowercase();
        // Bedrock ids: `us.anthropic.claude-3-7-sonnet-20250219-v1:0`.
        while let Some((head, rest)) = name.split_once('.')
            && !head.is_empty()
            && head.bytes().all(|b| b.is_ascii_alphabetic())
        {
            name = rest.to_string();
        }
        // The longest entry the name starts with, at a boundary (`o1` prices `o1-2024-12-17`,
        // not `o1x`).
        self.table
            .iter()
            .filter(|(entry, _)| {
                name.strip_prefix(entry.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', ':', '@']))
            })
            .max_by_key(|(entry, _)| entry.len())
            .map(|(_, price)| *price)
    }
}
