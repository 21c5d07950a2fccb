//! Which of a list of regexes can match a text, found with one pass over it.
//!
//! Each regex is searched with its own literal prefilter, so a text is scanned once per
//! regex: for the injection rules, a third of a 4 KB prompt's assessment. A gate extracts
//! the literals every match of each regex must start with (`regex-syntax`'s prefix
//! extraction), searches for all of them at once, and names the regexes whose literals
//! occur; only those are run. A regex whose matches have no such finite set of prefixes
//! (one that may start anywhere, or with a single byte of many) is always run. The gate
//! never drops a regex that could match: a match starts with one of its prefixes, and that
//! prefix occurs in the text.

use aho_corasick::{AhoCorasick, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};

/// Bytes of each prefix searched for.
const PREFIX_BYTES: usize = 8;

/// A gate over a list of regex patterns.
#[derive(Debug)]
pub struct Gate {
    searcher: Option<AhoCorasick>,
    /// The pattern each prefix belongs to.
    owners: Vec<usize>,
    /// Patterns that run whatever the text.
    always: Vec<usize>,
    patterns: usize,
}

impl Gate {
    /// A gate over `patterns`, which must parse as `regex::Regex::new` parses them; a
    /// pattern always runs when a prefix of it is shorter than `shortest` bytes (it would
    /// occur in most texts and slow the shared search down).
    pub fn with_shortest_prefix(patterns: &[&str], shortest: usize) -> Gate {
        Gate::with_parts(&[(patterns, shortest)])
    }

    /// A gate over the patterns of every part, numbered in order across the parts, each
    /// part with its own shortest useful prefix.
    pub fn with_parts(parts: &[(&[&str], usize)]) -> Gate {
        let mut prefixes: Vec<Vec<u8>> = Vec::new();
        let mut owners = Vec::new();
        let mut always = Vec::new();
        let patterns: Vec<(&str, usize)> = parts
            .iter()
            .flat_map(|(patterns, shortest)| patterns.iter().map(move |p| (*p, *shortest)))
            .collect();
        for (index, (pattern, shortest)) in patterns.iter().enumerate() {
            match prefixes_of(pattern, *shortest) {
                Some(found) => {
                    owners.extend(std::iter::repeat_n(index, found.len()));
                    prefixes.extend(found);
                }
                None => always.push(index),
            }
        }
        let searcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&prefixes)
            .ok();
        if searcher.is_none() {
            // Without the shared search every pattern runs, as before the gate.
            always = (0..patterns.len()).collect();
        }
        Gate {
            searcher,
            owners,
            always,
            patterns: patterns.len(),
        }
    }

    /// For each pattern, whether it may match `text`.
    pub fn candidates(&self, text: &str) -> Vec<bool> {
        let mut may = vec![false; self.patterns];
        for &index in &self.always {
            if let Some(slot) = may.get_mut(index) {
                *slot = true;
            }
        }
        if let Some(searcher) = &self.searcher {
            for found in searcher.find_overlapping_iter(text) {
                if let Some(slot) = self
                    .owners
                    .get(found.pattern().as_usize())
                    .and_then(|&owner| may.get_mut(owner))
                {
                    *slot = true;
                }
            }
        }
        may
    }
}

/// The byte strings every match of `pattern` starts with, or `None` when there is no such
/// finite set of useful length (or the pattern does not parse).
fn prefixes_of(pattern: &str, shortest: usize) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let seq = Extractor::new().kind(ExtractKind::Prefix).extract(&hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().len() < shortest) {
        return None;
    }
    // A prefix's first bytes are a prefix too: cut short, the prefixes are fewer (shared
    // stems merge) and the shared search stays fast; the regex itself checks the rest.
    let mut cut: Vec<Vec<u8>> = literals
        .iter()
        .map(|l| l.as_bytes().iter().take(PREFIX_BYTES).copied().collect())
        .collect();
    cut.sort();
    cut.dedup();
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regex_runs_only_when_one_of_its_prefixes_occurs() {
        let gate = Gate::with_shortest_prefix(
            &[
                r"\b(ignore|disregard) (all )?previous",
                r"\bdeveloper mode\b",
                r".{0,10}anything",
                r"\b(a|an)\w",
            ],
            3,
        );
        // The prefixes run as far as the pattern is literal, up to eight bytes: "ignore p"
        // and "ignore a", not "ignore".
        assert_eq!(
            gate.candidates("please ignore that"),
            [false, false, true, true]
        );
        assert_eq!(
            gate.candidates("please ignore all previous notes"),
            [true, false, true, true]
        );
        assert_eq!(
            gate.candidates("enter developer mode"),
            [false, true, true, true]
        );
        // Unbounded starts and one-letter prefixes always run.
        assert_eq!(gate.candidates(""), [false, false, true, true]);
    }

    #[test]
    fn parts_are_numbered_in_order_each_with_its_shortest_prefix() {
        let gate = Gate::with_parts(&[(&["ab", "xyz"], 1), (&["ab", "xyz"], 3)]);
        // "ab" is too short a prefix for the second part: there it always runs.
        assert_eq!(gate.candidates("xyz"), [false, true, true, true]);
        assert_eq!(gate.candidates("-"), [false, false, true, false]);
    }

    #[test]
    fn an_empty_set_of_patterns_names_nothing() {
        assert!(
            Gate::with_shortest_prefix(&[], 3)
                .candidates("text")
                .is_empty()
        );
    }
}
