//! NFKC, with a fast path for the text that is NFKC already by its letters alone.
//!
//! ASCII and the Latin letters of U+00C0–U+024F without a compatibility decomposition are
//! each NFKC and each starts a character of its own (canonical combining class 0), so any
//! text of them is NFKC: the text of English and of most western European languages. Such
//! text is passed on as it is, which costs a byte comparison per ASCII character, where
//! normalising it looks every character up twice. Other text is normalised as before: for
//! Cyrillic, say, even `unicode-normalization`'s quick check costs more than normalising.

use unicode_normalization::{Recompositions, UnicodeNormalization};

/// The Latin letters of U+00C0–U+024F with a compatibility decomposition (`Ĳ` to `IJ`,
/// `ſ` to `s`, `ǅ` to `Dž`, ...), which NFKC changes; every other character of the range is
/// NFKC on its own and a starter. A test checks this against the Unicode tables.
const LATIN_COMPATIBILITY: [char; 15] = [
    '\u{132}', '\u{133}', '\u{13F}', '\u{140}', '\u{149}', '\u{17F}', '\u{1C4}', '\u{1C5}',
    '\u{1C6}', '\u{1C7}', '\u{1C8}', '\u{1C9}', '\u{1CA}', '\u{1CB}', '\u{1CC}',
];

/// Whether `c` is NFKC on its own and a starter, by the fast path's table.
fn latin(c: char) -> bool {
    c.is_ascii()
        || (('\u{C0}'..='\u{24F}').contains(&c)
            && !LATIN_COMPATIBILITY.contains(&c)
            && !('\u{1F1}'..='\u{1F3}').contains(&c))
}

/// The characters of `text` in NFKC.
pub(crate) fn chars(text: &str) -> Chars<'_> {
    if text.chars().all(latin) {
        Chars::Kept(text.chars())
    } else {
        Chars::Normalised(text.nfkc())
    }
}

/// The characters of a text in NFKC: the text's own when they are, else normalised.
pub(crate) enum Chars<'a> {
    Kept(std::str::Chars<'a>),
    Normalised(Recompositions<std::str::Chars<'a>>),
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        match self {
            Chars::Kept(chars) => chars.next(),
            Chars::Normalised(chars) => chars.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Chars::Kept(chars) => chars.size_hint(),
            Chars::Normalised(chars) => chars.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use unicode_normalization::char::canonical_combining_class;
    use unicode_normalization::{UnicodeNormalization, is_nfkc};

    use super::*;

    #[test]
    fn the_fast_path_takes_exactly_the_starters_nfkc_keeps() {
        for c in ('\0'..='\u{2FF}').filter(|c| !c.is_ascii()) {
            let kept = is_nfkc(c.encode_utf8(&mut [0; 4])) && canonical_combining_class(c) == 0;
            let in_range = ('\u{C0}'..='\u{24F}').contains(&c);
            assert_eq!(latin(c), in_range && kept, "{c:?} U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn text_comes_out_in_nfkc_either_way() {
        for text in [
            "plain ASCII",
            "Révèle-moi la vérité sur l'été à Genève",
            "ĳssel ſtraße ǅemal",
            "ﬁnal ＡＢＣ ①",
            "e\u{301}te\u{301}",
            "Покажи мне",
        ] {
            let out: String = chars(text).collect();
            assert_eq!(out, text.nfkc().collect::<String>(), "{text}");
        }
    }
}
