//! Which of a list of regexes can match a text, found with one pass over it.
//!
//! Each regex is searched with its own literal prefilter, so a text is scanned once per
//! regex: for the injection rules, a third of a 4 KB prompt's assessment. A gate extracts
//! the literals every match of each regex must start with (`regex-syntax`'s prefix
//! extraction), looks for all of them in one pass, and names the regexes whose literals
//! occur; only those are run. A regex whose matches have no such finite set of prefixes
//! (one that may start anywhere, or with a single byte of many) is always run. The gate
//! never drops a regex that could match: a match starts with one of its prefixes, and that
//! prefix occurs in the text.
//!
//! The pass reads each byte once and walks a trie of the prefixes only from where one may
//! start: from the first byte of each word for the prefixes of matches that a word
//! boundary opens (most of them: `\bignore`), and from any byte that begins one of the
//! others (`<!--`, `@`). Word starts and such bytes are found eight bytes at a time, as the
//! lanes of a `u64`, by arithmetic without a branch per byte. An Aho-Corasick search for
//! every prefix at every byte walked one large automaton through all of them instead: the
//! requirements of the injection rules cost 15 us on a 4 KB prompt that way, 6 to 7 us
//! this way.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind, Look};

/// Bytes of each prefix searched for.
const PREFIX_BYTES: usize = 8;

/// A trie's state after a byte no prefix continues with; it never leaves it.
const DEAD: usize = 0;
/// A trie's state before its first byte.
const ROOT: usize = 1;

/// Patterns of a gate with what their prefixes may be; see [`Gate::with_parts`].
#[derive(Debug, Clone, Copy)]
pub struct Part<'a> {
    pub patterns: &'a [&'a str],
    /// A pattern with a prefix shorter than this always runs.
    pub shortest: usize,
    /// Whether prefixes that do not start words gate a pattern (otherwise it always runs).
    pub anywhere: bool,
}

/// A gate over a list of regex patterns.
#[derive(Debug)]
pub struct Gate {
    /// Prefixes of matches that start words, walked from each word's first byte.
    words: Trie,
    /// The other prefixes, walked from each byte that begins one.
    anywhere: Trie,
    /// The bytes that begin an `anywhere` prefix, and whether they are all rare ones.
    begins: Begins,
    /// Patterns that run whatever the text.
    always: Vec<usize>,
    patterns: usize,
}

/// Each lane's low bit, in a `u64` read as eight byte lanes.
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
/// Each lane's high bit: where the lane tests below put their answers.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// For each lane of `lanes` (each below 0x80), its high bit set when it lies in
/// `low..=high`: adding `0x80 - low` sets the high bit from `low` on, adding `0x7F - high`
/// from past `high` on; neither carries into the next lane.
const fn within(lanes: u64, low: u8, high: u8) -> u64 {
    let from_low = lanes.wrapping_add(LOW_BITS.wrapping_mul(0x80 - low as u64));
    let past_high = lanes.wrapping_add(LOW_BITS.wrapping_mul(0x7F - high as u64));
    from_low & !past_high & HIGH_BITS
}

/// The lanes of `lanes` that hold a byte of a word as ASCII `\b` sees it (a letter, a
/// digit or `_`), as their high bits.
const fn word_lanes(lanes: u64) -> u64 {
    let ascii = lanes & !HIGH_BITS;
    // Setting 0x20 folds the upper-case letters, and only them, onto the lower-case ones.
    let folded = ascii | LOW_BITS.wrapping_mul(0x20);
    let word = within(folded, b'a', b'z') | within(ascii, b'0', b'9') | within(ascii, b'_', b'_');
    word & !(lanes & HIGH_BITS)
}

/// The bytes that begin the prefixes walked from anywhere.
#[derive(Debug)]
struct Begins {
    /// Whether each byte begins one, as the trie reads it (both cases of a letter, every
    /// non-ASCII byte that starts a character).
    byte: [bool; 256],
    /// Whether every such byte is outside words and not a space: punctuation and
    /// non-ASCII bytes, a few in most text, are then the only ones looked up.
    rare: bool,
}

impl Begins {
    fn of(classes: &[u8]) -> Begins {
        let mut byte = [false; 256];
        for (value, begins) in byte.iter_mut().enumerate() {
            // A prefix starts on a character: never on a UTF-8 continuation byte, which
            // would otherwise start a walk at every other byte of Cyrillic text.
            *begins = u8::try_from(value)
                .is_ok_and(|b| classes.contains(&class_of(b)) && !(0x80..0xC0).contains(&b));
        }
        let rare = byte.iter().enumerate().all(|(value, &begins)| {
            !begins || u8::try_from(value).is_ok_and(|b| !is_word_byte(b) && b != b' ')
        });
        Begins { byte, rare }
    }

    /// The lanes of `lanes` (whose words `word` marks) to look up, as their high bits.
    #[inline]
    fn to_look_up(&self, lanes: u64, word: u64) -> u64 {
        if self.rare {
            !word & !within(lanes & !HIGH_BITS, b' ', b' ') & HIGH_BITS
        } else {
            HIGH_BITS
        }
    }
}

impl Gate {
    /// A gate over `patterns`, which must parse as `regex::Regex::new` parses them; a
    /// pattern always runs when a prefix of it is shorter than `shortest` bytes (it would
    /// occur in most texts and slow the shared search down).
    #[cfg(test)]
    pub fn with_shortest_prefix(patterns: &[&str], shortest: usize) -> Gate {
        Gate::with_parts(&[Part {
            patterns,
            shortest,
            anywhere: true,
        }])
    }

    /// A gate over the patterns of every part, numbered in order across the parts, each
    /// part with its own shortest useful prefix and whether its patterns may be gated by
    /// prefixes that start anywhere, not only at word starts (when not, such a pattern
    /// always runs: its prefixes would have the gate stop at most bytes of a long text).
    pub fn with_parts(parts: &[Part<'_>]) -> Gate {
        let (mut at_word_starts, mut anywhere) = (Vec::new(), Vec::new());
        let mut always = Vec::new();
        let patterns: Vec<(&str, &Part<'_>)> = parts
            .iter()
            .flat_map(|part| part.patterns.iter().map(move |p| (*p, part)))
            .collect();
        for (index, (pattern, part)) in patterns.iter().enumerate() {
            let found = prefixes_of(pattern, part.shortest)
                .filter(|found| part.anywhere || found.iter().all(|(_, starts_word)| *starts_word));
            match found {
                Some(found) => {
                    for (prefix, starts_word) in found {
                        if starts_word {
                            at_word_starts.push((prefix, index));
                        } else {
                            anywhere.push((prefix, index));
                        }
                    }
                }
                None => always.push(index),
            }
        }
        let mut firsts: Vec<u8> = anywhere
            .iter()
            .filter_map(|(prefix, _)| prefix.first().map(|&b| class_of(b)))
            .collect();
        firsts.sort_unstable();
        firsts.dedup();
        // Prefixes that need more states than a trie numbers gate nothing: their patterns
        // always run.
        let mut trie_of = |prefixes: &[(Vec<u8>, usize)]| {
            Trie::of(prefixes).unwrap_or_else(|| {
                always.extend(prefixes.iter().map(|(_, index)| *index));
                Trie::empty()
            })
        };
        let (words, anywhere) = (trie_of(&at_word_starts), trie_of(&anywhere));
        Gate {
            words,
            anywhere,
            begins: Begins::of(&firsts),
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
        // Eight bytes at a time, as the lanes of a `u64`: which begin a word, and which
        // begin another prefix, found by arithmetic on all eight at once; the walks start
        // at the set lanes. A branch per byte cost more than the walks.
        let bytes = text.as_bytes();
        let blocks = bytes.chunks_exact(8);
        // The last bytes padded with zeros, which are neither a word's nor a beginning.
        let mut last = [0u8; 8];
        if let Some(filled) = last.get_mut(..blocks.remainder().len()) {
            filled.copy_from_slice(blocks.remainder());
        }
        let mut previous_word = 0u64;
        let padded = (!blocks.remainder().is_empty()).then(|| u64::from_le_bytes(last));
        let lanes = blocks
            .map(|block| block.try_into().map_or(0, u64::from_le_bytes))
            .chain(padded);
        for (index, lanes) in lanes.enumerate() {
            let word = word_lanes(lanes);
            let mut starts = word & !((word << 8) | (previous_word >> 56));
            previous_word = word;
            let mut look_up = self.begins.to_look_up(lanes, word);
            let base = index * 8;
            while starts != 0 {
                let lane = starts.trailing_zeros() / 8;
                if self.words.opens((lanes >> (8 * lane)) as u8) {
                    self.words.walk(bytes, base + lane as usize, &mut may);
                }
                starts &= starts - 1;
            }
            while look_up != 0 {
                let lane = look_up.trailing_zeros() / 8;
                let byte = (lanes >> (8 * lane)) as u8;
                if self.begins.byte.get(usize::from(byte)) == Some(&true) {
                    self.anywhere
                        .walk_stepwise(bytes, base + lane as usize, &mut may);
                }
                look_up &= look_up - 1;
            }
        }
        may
    }
}

/// Whether `byte` belongs to a word as an ASCII `\b` sees it.
const fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The class of `byte` in the tries, before numbering: letters of both cases are one, and
/// so are all non-ASCII bytes. Merged, a trie is smaller (its hot first levels stay in
/// cache) and finds a prefix wherever it is, and elsewhere too, which is allowed.
const fn class_of(byte: u8) -> u8 {
    if byte >= 0x80 {
        0x80
    } else {
        byte.to_ascii_lowercase()
    }
}

/// A trie of prefixes as a table of transitions over classes of bytes ([`class_of`]),
/// its states numbered breadth first so that the levels every walk reads are together.
#[derive(Debug)]
struct Trie {
    /// Each byte's class; 0 for a byte no prefix holds.
    classes: [u8; 256],
    /// Classes per state.
    stride: usize,
    /// The state after each state and class ([`DEAD`] for none): `u16`s, half the size
    /// of `u32`s, so more of the table the walks read stays in cache.
    next: Vec<u16>,
    /// For each state, the range of `owners` naming the patterns whose prefix ends there.
    ends: Vec<(u32, u32)>,
    owners: Vec<u32>,
    /// The state after the root and each two classes: the first two steps in one look-up.
    pairs: Vec<u16>,
}

impl Trie {
    /// A trie with no prefixes.
    fn empty() -> Trie {
        Trie {
            classes: [0; 256],
            stride: 1,
            next: Vec::new(),
            ends: Vec::new(),
            owners: Vec::new(),
            pairs: Vec::new(),
        }
    }

    /// A trie of `prefixes`, each with its owner, or `None` when it would have more states
    /// than a `u16` numbers.
    fn of(prefixes: &[(Vec<u8>, usize)]) -> Option<Trie> {
        let mut numbers = [0u8; 0x81];
        let mut stride = 1u8;
        for (prefix, _) in prefixes {
            for &byte in prefix {
                if let Some(number) = numbers.get_mut(usize::from(class_of(byte)))
                    && *number == 0
                {
                    // At most 0x81 classes, and a number 0 for none.
                    *number = stride;
                    stride = stride.saturating_add(1);
                }
            }
        }
        let mut classes = [0u8; 256];
        for (byte, class) in classes.iter_mut().enumerate() {
            if let Ok(byte) = u8::try_from(byte) {
                *class = numbers
                    .get(usize::from(class_of(byte)))
                    .copied()
                    .unwrap_or(0);
            }
        }
        // A tree of child maps first, then numbered breadth first into the table.
        let mut children: Vec<std::collections::BTreeMap<u8, usize>> = vec![Default::default()];
        let mut ending: Vec<Vec<u32>> = vec![Vec::new()];
        for (prefix, owner) in prefixes {
            let mut node = 0usize;
            for &byte in prefix {
                let class = classes.get(usize::from(byte)).copied().unwrap_or(0);
                let fresh = children.len();
                let Some(map) = children.get_mut(node) else {
                    break;
                };
                node = *map.entry(class).or_insert(fresh);
                if node == fresh {
                    children.push(Default::default());
                    ending.push(Vec::new());
                }
            }
            if let (Some(ends), Ok(owner)) = (ending.get_mut(node), u32::try_from(*owner)) {
                ends.push(owner);
            }
        }
        let mut order = vec![0usize];
        let mut number = vec![0u16; children.len()];
        let mut at = 0;
        while let Some(&node) = order.get(at) {
            for &child in children.get(node).into_iter().flat_map(|map| map.values()) {
                if let Some(slot) = number.get_mut(child) {
                    // State 0 is the dead one: the root is 1.
                    *slot = u16::try_from(order.len() + 1).ok()?;
                }
                order.push(child);
            }
            at += 1;
        }
        let stride = usize::from(stride);
        // Row 0 is the dead state's, every transition back to it.
        let mut next = vec![0u16; (order.len() + 1) * stride];
        let mut owners = Vec::new();
        let mut ends = Vec::with_capacity(order.len() + 1);
        ends.push((0, 0));
        for (state, &node) in (ROOT..).zip(&order) {
            for (&class, &child) in children.get(node).into_iter().flatten() {
                if let (Some(cell), Some(&to)) = (
                    next.get_mut(state * stride + usize::from(class)),
                    number.get(child),
                ) {
                    *cell = to;
                }
            }
            let names = ending.get_mut(node).map(std::mem::take).unwrap_or_default();
            let from = owners.len() as u32;
            owners.extend(names);
            if let Some(names) = owners.get_mut(from as usize..) {
                names.sort_unstable();
            }
            ends.push((from, owners.len() as u32));
        }
        let mut trie = Trie {
            classes,
            stride,
            next,
            pairs: Vec::new(),
            ends,
            owners,
        };
        let pairs = (0..stride * stride)
            .map(|classes| trie.step(trie.step(ROOT, classes / stride), classes % stride))
            .map(|state| u16::try_from(state).unwrap_or(0))
            .collect();
        trie.pairs = pairs;
        Some(trie)
    }

    /// The class of `byte` as the trie numbers it (0: no prefix holds it).
    #[inline]
    fn class(&self, byte: u8) -> usize {
        self.classes
            .get(usize::from(byte))
            .map_or(0, |&class| usize::from(class))
    }

    /// Whether a prefix begins with `byte`.
    #[inline]
    fn opens(&self, byte: u8) -> bool {
        self.step(ROOT, self.class(byte)) != DEAD
    }

    /// The state after `state` reads a byte of `class`.
    #[inline]
    fn step(&self, state: usize, class: usize) -> usize {
        self.next
            .get(state * self.stride + class)
            .map_or(DEAD, |&to| usize::from(to))
    }

    /// Marks in `may` the owners of the prefixes that end in `state`.
    #[inline]
    fn mark(&self, state: usize, may: &mut [bool]) {
        let Some(&(from, to)) = self.ends.get(state) else {
            return;
        };
        for &owner in self
            .owners
            .get(from as usize..to as usize)
            .unwrap_or_default()
        {
            if let Some(slot) = may.get_mut(owner as usize) {
                *slot = true;
            }
        }
    }

    /// Whether a prefix ends in `state`.
    #[inline]
    fn ends_in(&self, state: usize) -> bool {
        self.ends.get(state).is_some_and(|(from, to)| from != to)
    }

    /// [`Trie::walk`] a step at a time, ending at the first byte no prefix continues with:
    /// cheaper where most walks end at their second byte, as those from the bytes that
    /// begin prefixes anywhere (`<`, `@`) do.
    #[inline]
    fn walk_stepwise(&self, text: &[u8], at: usize, may: &mut [bool]) {
        let mut state = ROOT;
        for &byte in text.get(at..).unwrap_or_default().iter().take(PREFIX_BYTES) {
            state = self.step(state, self.class(byte));
            if state == DEAD {
                return;
            }
            self.mark(state, may);
        }
    }

    /// Marks in `may` the owner of every prefix that starts at `at` in `text`.
    #[inline]
    fn walk(&self, text: &[u8], at: usize, may: &mut [bool]) {
        let text = text.get(at..).unwrap_or_default();
        // Past the end of the text, the class of no prefix's byte.
        let class = |i: usize| text.get(i).map_or(0, |&byte| self.class(byte));
        // The first three steps are taken whatever they meet (the dead state absorbs), the
        // first two in one look-up: most walks end within them, and a branch for each step
        // was mostly mispredicted.
        let first = self.step(ROOT, class(0));
        let second = self
            .pairs
            .get(class(0) * self.stride + class(1))
            .map_or(DEAD, |&to| usize::from(to));
        let mut state = self.step(second, class(2));
        if self.ends_in(first) | self.ends_in(second) | self.ends_in(state) {
            self.mark(first, may);
            self.mark(second, may);
            self.mark(state, may);
        }
        for i in 3..PREFIX_BYTES {
            if state == DEAD {
                return;
            }
            state = self.step(state, class(i));
            self.mark(state, may);
        }
    }
}

/// The byte strings every match of `pattern` starts with, each with whether such a match
/// starts a word (a word boundary opens it and the prefix's first byte is a word's), or
/// `None` when there is no such finite set of useful length (or the pattern does not
/// parse). An alternation's branches are taken one by one: `\bignore|@` has one prefix
/// of each kind.
fn prefixes_of(pattern: &str, shortest: usize) -> Option<Vec<(Vec<u8>, bool)>> {
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let mut cut: Vec<(Vec<u8>, bool)> = Vec::new();
    for branch in branches(&hir) {
        let seq = Extractor::new().kind(ExtractKind::Prefix).extract(branch);
        let literals = seq.literals()?;
        if literals.is_empty() || literals.iter().any(|l| l.as_bytes().len() < shortest) {
            return None;
        }
        let bounded = opens_with_word_boundary(branch);
        // A prefix's first bytes are a prefix too: cut short, the prefixes are fewer
        // (shared stems merge) and the shared search stays fast; the regex itself checks
        // the rest.
        cut.extend(literals.iter().map(|l| {
            let bytes: Vec<u8> = l.as_bytes().iter().take(PREFIX_BYTES).copied().collect();
            let starts_word = bounded && bytes.first().is_some_and(|&b| is_word_byte(b));
            (bytes, starts_word)
        }));
    }
    cut.sort();
    cut.dedup();
    Some(cut)
}

/// The branches of `hir`'s outermost alternation, through groups.
fn branches(hir: &Hir) -> Vec<&Hir> {
    match hir.kind() {
        HirKind::Alternation(alternatives) => alternatives.iter().flat_map(branches).collect(),
        HirKind::Capture(group) => branches(&group.sub),
        _ => vec![hir],
    }
}

/// Whether every match of `hir` starts at a word boundary before a word character: a
/// `\b` (or the start of a word) opens it, in every alternative.
fn opens_with_word_boundary(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(look) => matches!(
            look,
            Look::WordAscii
                | Look::WordUnicode
                | Look::WordStartAscii
                | Look::WordStartUnicode
                | Look::WordStartHalfAscii
                | Look::WordStartHalfUnicode
        ),
        HirKind::Concat(parts) => parts.first().is_some_and(opens_with_word_boundary),
        HirKind::Capture(group) => opens_with_word_boundary(&group.sub),
        HirKind::Alternation(alternatives) => alternatives.iter().all(opens_with_word_boundary),
        _ => false,
    }
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
        let part = |shortest| Part {
            patterns: &["ab", "xyz"],
            shortest,
            anywhere: true,
        };
        let gate = Gate::with_parts(&[part(1), part(3)]);
        // "ab" is too short a prefix for the second part: there it always runs.
        assert_eq!(gate.candidates("xyz"), [false, true, true, true]);
        assert_eq!(gate.candidates("-"), [false, false, true, false]);
    }

    #[test]
    fn prefixes_a_word_boundary_opens_are_found_at_word_starts_only() {
        let gate = Gate::with_shortest_prefix(&[r"\bmode\b", r"mode", r"(?i)\bsystem|<!--"], 1);
        // Inside a word, only the unbounded pattern may match.
        assert_eq!(gate.candidates("godmode"), [false, true, false]);
        assert_eq!(gate.candidates("(mode)"), [true, true, false]);
        // An alternation's branches are taken one by one: the bounded one at word starts,
        // the other anywhere, in either case of its letters.
        assert_eq!(gate.candidates("ecosystem"), [false, false, false]);
        assert_eq!(gate.candidates("SYSTEM"), [false, false, true]);
        assert_eq!(gate.candidates("a<!--b"), [false, false, true]);
    }

    #[test]
    fn texts_are_read_whole_across_their_eight_byte_lanes() {
        let gate = Gate::with_shortest_prefix(&[r"\bignore", r"\]\(https?:"], 1);
        // A word or a prefix at every offset, from the first lane to a partial last one,
        // and a word that continues across a lane boundary is one word.
        for pad in 0..20 {
            let padding = "x".repeat(pad);
            assert_eq!(gate.candidates(&format!("{padding} ignore")), [true, false]);
            assert_eq!(gate.candidates(&format!("ignore{padding}")), [true, false]);
            assert_eq!(
                gate.candidates(&format!("{padding}ignore")),
                [pad == 0, false]
            );
            assert_eq!(gate.candidates(&format!("{padding}](http:")), [false, true]);
        }
        // Non-ASCII letters do not belong to a word as ASCII `\b` sees it.
        assert_eq!(gate.candidates("éignore"), [true, false]);
    }

    #[test]
    fn prefixes_a_trie_cannot_number_leave_their_patterns_always_run() {
        // 200 patterns of 100 eight-letter words each: over 100,000 states, past a `u16`.
        let mut seed = 7u64;
        let mut letter = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            char::from(b'a' + (seed >> 33) as u8 % 26)
        };
        let patterns: Vec<String> = (0..200)
            .map(|_| {
                let words: Vec<String> = (0..100)
                    .map(|_| (0..8).map(|_| letter()).collect())
                    .collect();
                format!(r"\b(?:{})", words.join("|"))
            })
            .collect();
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let gate = Gate::with_shortest_prefix(&patterns, 3);
        assert!(gate.candidates("nothing here").iter().all(|may| *may));
        // Fewer fit, and gate.
        let gate = Gate::with_shortest_prefix(patterns.get(..4).unwrap_or_default(), 3);
        assert!(gate.candidates("nothing here").iter().all(|may| !*may));
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
