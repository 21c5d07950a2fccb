//! Content inspection: personal data and secrets found in text, as findings that feed the
//! decision input. Pure functions, no IO, nothing downloaded: every pattern, checksum and
//! table ships in the binary.
//!
//! One pass of a [`RegexSet`] tells which detectors can match at all; only those run. All
//! patterns use the `regex` crate's automata, so matching is linear in the text whatever
//! it holds. A candidate becomes a finding only when its validator confirms it (a checksum,
//! a number-allocation rule, a context word, entropy, a decodable structure); overlapping
//! candidates keep the detector listed first (secrets before personal data, validated
//! classes before loose ones).

use std::ops::Range;
use std::sync::LazyLock;

use regex::bytes::{Regex, RegexSet};
use serde::Serialize;

use crate::input::{DecisionInput, Span};

mod gate;
pub mod injection;
pub mod model;
mod nfkc;
pub mod poisoning;
pub mod validate;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Personal data.
    Pii,
    /// A credential.
    Secret,
}

/// One detector match within a text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// `email`, `credit_card`, `aws_access_key`, ...
    pub class: &'static str,
    /// Personal data or secret.
    pub kind: Kind,
    /// Byte offsets of the match.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Character offsets of the match.
    pub char_start: usize,
    /// One past the last character.
    pub char_end: usize,
    /// In [0, 1].
    pub confidence: f64,
    /// What confirmed it (`luhn`, `mod97`, `context`, ...; `pattern` for shape only).
    pub validator: &'static str,
}

/// A confirmed candidate: its confidence and validator.
type Verdict = Option<(f64, &'static str)>;

struct Detector {
    class: &'static str,
    kind: Kind,
    pattern: String,
    /// The capture group holding the value (0: the whole match); context words outside it
    /// are not part of the finding.
    group: usize,
    check: fn(&str) -> Verdict,
    /// What every match is made of, if it is narrower than the text.
    within: Option<Within>,
}

/// The bytes every match of a detector is made of, and its shortest match: its regex then
/// runs only on long enough runs of them (with a byte of context each side, for `\b`),
/// not on the whole text, which it would walk byte by byte without a literal to look for.
#[derive(Clone, Copy)]
enum Within {
    /// Digits grouped by single spaces or dashes (card numbers).
    DigitGroups(usize),
    /// Capitals and digits grouped by spaces (IBANs).
    CapitalGroups(usize),
    /// Digits and dots (IPv4 addresses).
    Dotted(usize),
    /// Digits with the signs and spaces a phone number is written with.
    Dialled(usize),
    /// A match starts with one of these words and ends within the next few words: spaces
    /// after the word. The words are looked for in the text lower-cased (`Cue::folded`) and
    /// as written (`Cue::cased`).
    Cue(&'static LazyLock<Option<Cue>>, usize),
}

impl Within {
    fn runs(self, bytes: &[u8]) -> Vec<Range<usize>> {
        match self {
            Within::DigitGroups(min) => runs(bytes, min, |b| {
                b.is_ascii_digit() | (b == b' ') | (b == b'-')
            }),
            Within::CapitalGroups(min) => runs(bytes, min, |b| {
                b.is_ascii_digit() | b.is_ascii_uppercase() | (b == b' ')
            }),
            Within::Dotted(min) => runs(bytes, min, |b| b.is_ascii_digit() | (b == b'.')),
            Within::Dialled(min) => runs(bytes, min, |b| {
                let sign = (b == b'+') | (b == b'(') | (b == b')') | (b == b'.') | (b == b'-');
                b.is_ascii_digit() | b.is_ascii_whitespace() | sign
            }),
            Within::Cue(cue, spaces) => {
                let Some(Cue { folded, cased }) = cue.as_ref() else {
                    return std::iter::once(0..bytes.len()).collect();
                };
                let lower = bytes.to_ascii_lowercase();
                let mut words: Vec<Range<usize>> =
                    folded.find_iter(&lower).map(|m| m.range()).collect();
                words.extend(cased.find_iter(bytes).map(|m| m.range()));
                words.sort_unstable_by_key(|w| w.start);
                let mut found: Vec<Range<usize>> = Vec::new();
                for word in words {
                    let rest = bytes.get(word.end..).unwrap_or_default();
                    let end = rest
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| **b == b' ')
                        .nth(spaces - 1)
                        .map_or(bytes.len(), |(i, _)| word.end + i);
                    match found.last_mut() {
                        Some(last) if last.end >= word.start => last.end = last.end.max(end),
                        _ => found.push(word.start..end),
                    }
                }
                found
            }
        }
    }
}

/// What a name follows: words that introduce a person, and titles. The `person_name`
/// pattern then decides, in its own case rules.
const NAME_CUES: &[&str] = &[
    "my name is",
    "name is",
    "name:",
    "i am",
    "i'm",
    "this is",
    "signed",
    "regards",
    "sincerely",
    "cheers",
    "thanks",
    "best",
    "patient",
    "customer",
    "employee",
    "contact",
    "applicant",
    "tenant",
    "recipient",
    "attn:",
    "attn",
];

/// Titles before a name.
const TITLES: &[&str] = &["Mr", "Mrs", "Ms", "Miss", "Dr", "Prof", "Mx"];

/// The words a match of [`Within::Cue`] starts with.
#[derive(Debug)]
struct Cue {
    /// Words in any case, found in the lower-cased text.
    folded: Regex,
    /// Words in their own case, found in the text as written.
    cased: Regex,
}

static NAME_CUE_WORDS: LazyLock<Option<Cue>> = LazyLock::new(|| {
    let words: Vec<String> = NAME_CUES.iter().map(|w| regex::escape(w)).collect();
    // Every match of the detector starts at a word boundary: so does every cue it needs
    // (without it, "best" in "bestow" would open a window). Titles are capitalised in the
    // detector's pattern, and found as written: lower-cased, "ms", "dr" and "mr" stand in
    // "items", "draft" and "mrna", each a window to search.
    Some(Cue {
        folded: Regex::new(&format!(r"(?-u)\b(?:{})", words.join("|"))).ok()?,
        cased: Regex::new(&format!(r"(?-u)\b(?:{})\b", TITLES.join("|"))).ok()?,
    })
});

/// A token whose issuer prefix and length identify it.
fn prefixed(_: &str) -> Verdict {
    Some((0.98, "prefix"))
}

/// A structure only a secret has (a key block, a key-named field).
fn structure(_: &str) -> Verdict {
    Some((0.95, "pattern"))
}

fn email(value: &str) -> Verdict {
    let (local, domain) = value.rsplit_once('@')?;
    let ok = !local.starts_with('.')
        && !local.ends_with('.')
        && !value.contains("..")
        && !domain.starts_with('-')
        && domain.contains('.');
    ok.then_some((0.97, "syntax"))
}

fn phone(value: &str) -> Verdict {
    let digits = validate::digits(value);
    if value.starts_with('+') || value.starts_with("00") {
        let n = digits
            .len()
            .saturating_sub(usize::from(value.starts_with("00")) * 2);
        return (8..=15).contains(&n).then_some((0.9, "e164_length"));
    }
    // North American numbering: area and exchange codes start with 2–9.
    let ok = digits.len() == 10
        && digits.first().is_some_and(|d| *d >= 2)
        && digits.get(3).is_some_and(|d| *d >= 2);
    ok.then_some((0.85, "nanp"))
}

fn card(value: &str) -> Verdict {
    let digits = validate::digits(value);
    (validate::luhn(&digits) && validate::card_network(&digits).is_some()).then_some((0.99, "luhn"))
}

fn iban(value: &str) -> Verdict {
    validate::iban(value).then_some((0.99, "mod97"))
}

fn ssn(value: &str) -> Verdict {
    validate::ssn(&validate::digits(value)).then_some((0.9, "ssn_rules"))
}

fn ipv4(value: &str) -> Verdict {
    let ok = value
        .split('.')
        .all(|octet| octet.parse::<u8>().is_ok() && (octet == "0" || !octet.starts_with('0')));
    ok.then_some((0.9, "octets"))
}

fn ipv6(value: &str) -> Verdict {
    let groups = value.split(':').filter(|g| !g.is_empty()).count();
    let ok = groups >= 3 && value.parse::<std::net::Ipv6Addr>().is_ok();
    ok.then_some((0.9, "parse"))
}

fn date(value: &str) -> Verdict {
    validate::numeric_date(value).then_some((0.85, "context"))
}

fn document_number(value: &str) -> Verdict {
    value
        .bytes()
        .any(|b| b.is_ascii_digit())
        .then_some((0.8, "context"))
}

fn street_address(_: &str) -> Verdict {
    Some((0.75, "street_suffix"))
}

/// Words that follow a context cue ("I'm", "this is") without being a name.
const NOT_NAMES: &[&str] = &[
    "Happy", "Sorry", "Glad", "Here", "Not", "Just", "Still", "Going", "Looking", "Trying",
    "Working", "New", "The", "A", "An", "Team", "Support", "All", "Everyone", "Sure", "Fine",
    "Good", "Great", "Thanks", "Thank", "Best", "Kind", "Regards", "Dear", "Hello", "Hi", "Mr",
    "Mrs", "Ms", "Miss", "Dr", "Prof", "Mx",
];

fn person_name(value: &str) -> Verdict {
    let first = value.split([' ', '-']).next().unwrap_or_default();
    (!NOT_NAMES.contains(&first)).then_some((0.7, "context"))
}

fn gazetteer_name(value: &str) -> Verdict {
    let surname = value.split(' ').nth(1).unwrap_or_default();
    (!NOT_NAMES.contains(&surname) && !STREET_WORDS.contains(&surname))
        .then_some((0.6, "gazetteer"))
}

/// Street-type words, which end an address rather than a name.
const STREET_WORDS: &[&str] = &[
    "Street",
    "Avenue",
    "Road",
    "Lane",
    "Drive",
    "Way",
    "Court",
    "Place",
    "Square",
    "Boulevard",
];

/// Common given names across languages; a capitalised word after one is taken for a
/// surname. Names that are also everyday words (May, Will, Grace, Mark) are left out.
const GIVEN_NAMES: &[&str] = &[
    "James",
    "John",
    "Robert",
    "Michael",
    "William",
    "David",
    "Richard",
    "Joseph",
    "Thomas",
    "Charles",
    "Christopher",
    "Daniel",
    "Matthew",
    "Anthony",
    "Donald",
    "Steven",
    "Paul",
    "Andrew",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Edward",
    "Jason",
    "Jeffrey",
    "Ryan",
    "Jacob",
    "Gary",
    "Nicholas",
    "Eric",
    "Jonathan",
    "Stephen",
    "Larry",
    "Justin",
    "Scott",
    "Brandon",
    "Benjamin",
    "Samuel",
    "Gregory",
    "Alexander",
    "Patrick",
    "Dennis",
    "Tyler",
    "Aaron",
    "Henry",
    "Peter",
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Margaret",
    "Sandra",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Rebecca",
    "Laura",
    "Sharon",
    "Cynthia",
    "Kathleen",
    "Amy",
    "Angela",
    "Anna",
    "Brenda",
    "Pamela",
    "Emma",
    "Nicole",
    "Helen",
    "Samantha",
    "Katherine",
    "Christine",
    "Rachel",
    "Catherine",
    "Maria",
    "Heather",
    "Diane",
    "Julie",
    "Olivia",
    "Sophia",
    "Isabella",
    "Mia",
    "Charlotte",
    "Amelia",
    "Harper",
    "Ella",
    "Chloe",
    "Zoe",
    "Lucas",
    "Liam",
    "Noah",
    "Ethan",
    "Oliver",
    "Elijah",
    "Logan",
    "Mohammed",
    "Muhammad",
    "Ahmed",
    "Ali",
    "Omar",
    "Fatima",
    "Aisha",
    "Yusuf",
    "Hassan",
    "Priya",
    "Rahul",
    "Ravi",
    "Anil",
    "Sunita",
    "Arjun",
    "Deepak",
    "Wei",
    "Li",
    "Jun",
    "Yuki",
    "Hiroshi",
    "Kenji",
    "Sakura",
    "Min",
    "Ji",
    "Hana",
    "Carlos",
    "Juan",
    "Jose",
    "Luis",
    "Miguel",
    "Sofia",
    "Lucia",
    "Mateo",
    "Diego",
    "Pablo",
    "Elena",
    "Ana",
    "Pedro",
    "Joao",
    "Marco",
    "Giulia",
    "Francesco",
    "Alessandro",
    "Luca",
    "Hans",
    "Klaus",
    "Jurgen",
    "Stefan",
    "Lars",
    "Sven",
    "Ingrid",
    "Astrid",
    "Pierre",
    "Jean",
    "Marie",
    "Claire",
    "Camille",
    "Louis",
    "Ivan",
    "Dmitri",
    "Olga",
    "Natasha",
    "Sergei",
    "Kwame",
    "Ade",
    "Chidi",
    "Amara",
    "Ngozi",
    "Ines",
    "Tariq",
    "Layla",
    "Noor",
    "Elif",
    "Mehmet",
    "Ayse",
];

fn high_entropy(value: &str) -> Verdict {
    (validate::entropy(value) >= 3.5 && validate::mixed(value)).then_some((0.8, "entropy"))
}

fn aws_secret(value: &str) -> Verdict {
    (validate::entropy(value) >= 4.0).then_some((0.9, "entropy"))
}

fn jwt(value: &str) -> Verdict {
    validate::jwt(value).then_some((0.95, "jwt_header"))
}

fn url_password(value: &str) -> Verdict {
    let placeholder = value.starts_with('$')
        || value.starts_with('{')
        || value.starts_with('<')
        || value.bytes().all(|b| b == b'*' || b == b'x' || b == b'X');
    (!placeholder).then_some((0.9, "pattern"))
}

macro_rules! detector {
    ($class:literal, $kind:ident, $group:literal, $check:expr, $pattern:expr) => {
        Detector {
            class: $class,
            kind: Kind::$kind,
            pattern: $pattern.to_string(),
            group: $group,
            check: $check,
            within: None,
        }
    };
    ($class:literal, $kind:ident, $group:literal, $check:expr, $pattern:expr, $within:expr) => {
        Detector {
            within: Some($within),
            ..detector!($class, $kind, $group, $check, $pattern)
        }
    };
}

/// Months, for dates written out.
const MONTH: &str = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?";

/// Every detector, in priority order.
fn detectors() -> Vec<Detector> {
    let dob = format!(
        r"(?i)\b(?:born(?:\s+on)?|date\s+of\s+birth|d\.?o\.?b\.?|birth\s*date|birthday)\s*(?:is|was|:|-)?\s*(\b\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:\d{{4}}|\d{{2}})|\d{{4}}-\d{{2}}-\d{{2}}|{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH},?\s+\d{{4}})\b"
    );
    let cues: Vec<String> = NAME_CUES.iter().map(|w| regex::escape(w)).collect();
    let titles = TITLES.join("|");
    let person_after_cue = format!(
        r"(?:\b(?i:{})[,:]? |\b(?:{titles})\.? )(?:(?:{titles})\.? )?([A-Z][a-z]*(?:'[A-Z][a-z]+)?(?:[ -][A-Z][a-z]+(?:'[A-Z][a-z]+)?){{0,2}})\b",
        cues.join("|")
    );
    let given_names = format!(
        r"\b(?:{}) [A-Z][a-z]+(?:-[A-Z][a-z]+)?\b",
        GIVEN_NAMES.join("|")
    );
    vec![
        // Secrets first: a key is never reported as a phone number.
        detector!(
            "private_key",
            Secret,
            0,
            structure,
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s]*)"
        ),
        detector!(
            "aws_access_key",
            Secret,
            1,
            prefixed,
            r"\b((?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z2-7]{16})\b"
        ),
        detector!(
            "aws_secret_key",
            Secret,
            1,
            aws_secret,
            r#"(?i)aws[a-z_ .-]{0,20}(?:secret|sk)[a-z_ .-]{0,20}["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})\b"#
        ),
        detector!("gcp_api_key", Secret, 0, prefixed, r"AIza[0-9A-Za-z_-]{35}"),
        detector!(
            "gcp_service_account_key",
            Secret,
            1,
            structure,
            r#""private_key_id"\s*:\s*"([0-9a-f]{40})""#
        ),
        detector!(
            "azure_storage_key",
            Secret,
            1,
            structure,
            r"(?i)AccountKey=([A-Za-z0-9+/]{86}==)"
        ),
        detector!(
            "azure_client_secret",
            Secret,
            1,
            high_entropy,
            r#"(?i)(?:azure|client)[a-z_ .-]{0,10}secret["']?\s*[:=]\s*["']?([A-Za-z0-9_~.-]{34,40})"#
        ),
        detector!(
            "github_token",
            Secret,
            0,
            prefixed,
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{82})\b"
        ),
        detector!(
            "gitlab_token",
            Secret,
            0,
            prefixed,
            r"\bglpat-[A-Za-z0-9_-]{20}\b"
        ),
        detector!(
            "slack_webhook",
            Secret,
            0,
            prefixed,
            r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+"
        ),
        detector!(
            "slack_token",
            Secret,
            0,
            prefixed,
            r"\bxox[abposr]-[A-Za-z0-9-]{10,72}"
        ),
        detector!(
            "anthropic_api_key",
            Secret,
            0,
            prefixed,
            r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{80,120}"
        ),
        detector!(
            "openai_api_key",
            Secret,
            0,
            prefixed,
            r"\b(?:sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,200}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|sk-[A-Za-z0-9]{48})\b"
        ),
        detector!(
            "stripe_key",
            Secret,
            0,
            prefixed,
            r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{24,99}\b"
        ),
        detector!(
            "jwt",
            Secret,
            0,
            jwt,
            r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}"
        ),
        detector!(
            "password_in_url",
            Secret,
            1,
            url_password,
            r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@]{1,100}:([^\s/@]{1,100})@"
        ),
        detector!(
            "generic_secret",
            Secret,
            1,
            high_entropy,
            r#"(?i)(?:api[_-]?key|secret|token|passw(?:or)?d|pwd|auth[_-]?key)["']?\s*[:=]\s*["']?([A-Za-z0-9/+_.=-]{16,128})"#
        ),
        // Personal data, validated classes first; an IBAN before a card number, whose digit
        // groups it may contain.
        detector!(
            "iban",
            Pii,
            0,
            iban,
            r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
            Within::CapitalGroups(12)
        ),
        detector!(
            "credit_card",
            Pii,
            0,
            card,
            r"\b(?:\d[ -]?){11,18}\d\b",
            Within::DigitGroups(12)
        ),
        detector!(
            "email",
            Pii,
            0,
            email,
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
        ),
        detector!("us_ssn", Pii, 0, ssn, r"\b\d{3}-\d{2}-\d{4}\b"),
        detector!(
            "us_ssn",
            Pii,
            1,
            ssn,
            r"(?i)\b(?:ssn|social\s+security(?:\s+number)?)\s*(?:no\.?|number|#)?\s*[:#]?\s*(\d{9})\b"
        ),
        detector!("date_of_birth", Pii, 1, date, dob),
        detector!(
            "passport_number",
            Pii,
            1,
            document_number,
            r"(?i)\bpassport(?:\s+(?:no\.?|number|num|#))?\s*[:#]?\s*([A-Z0-9]{6,9})\b"
        ),
        detector!(
            "driver_license_number",
            Pii,
            1,
            document_number,
            r"(?i)\b(?:driver'?s?\s+licen[cs]e|driving\s+licen[cs]e)(?:\s+(?:no\.?|number|#))?\s*[:#]?\s*([A-Z0-9-]{5,16})\b"
        ),
        detector!(
            "ipv4",
            Pii,
            0,
            ipv4,
            r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
            Within::Dotted(7)
        ),
        detector!(
            "ipv6",
            Pii,
            0,
            ipv6,
            // Eight groups, or fewer around one `::`: what `Ipv6Addr` accepts. A time of
            // day ("14:05") is neither, and never wakes this detector.
            r"(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:\b[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?"
        ),
        detector!(
            "street_address",
            Pii,
            0,
            street_address,
            r"\b\d{1,5}[A-Za-z]?,? (?:[A-Z][a-z]+\.? ){1,4}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Way|Court|Ct|Place|Pl|Square|Sq|Terrace|Crescent|Close|Parkway|Pkwy|Highway|Hwy)\b\.?(?:,? (?:Apt|Suite|Unit|Flat|#) ?[A-Za-z0-9-]+)?(?:, [A-Z][a-z]+(?: [A-Z][a-z]+)*)?(?:,? [A-Z]{2} \d{5}(?:-\d{4})?)?|\b[A-Z][a-z]+(?:stra(?:ss|\xC3\x9F)e|weg|gasse|platz|allee|laan|straat|gatan|vej) \d{1,4}[a-z]?\b|\b\d{1,4},? (?:rue|avenue|boulevard|chemin|place|via|calle|avenida|rua|piazza|plaza) (?:[A-Za-z'-]+ ){0,3}[A-Za-z'-]+\b|\b(?:Rue|Via|Calle|Avenida|Rua|Piazza|Plaza) (?:[A-Za-z'-]+ ){0,3}[A-Za-z'-]+,? \d{1,4}\b"
        ),
        detector!(
            "phone",
            Pii,
            0,
            phone,
            r"(?:\+|\b00)[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,4}\b|(?:\(\d{3}\)\s?|\b\d{3}[.-])\d{3}[.-]\d{4}\b",
            // The validator wants at least eight digits after the `+`.
            Within::Dialled(9)
        ),
        // Names, best effort without a model: after a cue that introduces a person, or a
        // common given name followed by a capitalised word.
        detector!(
            "person_name",
            Pii,
            1,
            person_name,
            person_after_cue.as_str(),
            // After the cue: `[,:]? `, a title and its space, two more between name parts.
            Within::Cue(&NAME_CUE_WORDS, 5)
        ),
        detector!("person_name", Pii, 0, gazetteer_name, given_names.as_str()),
    ]
}

struct Scanner {
    detectors: Vec<Detector>,
    set: RegexSet,
    regexes: Vec<Regex>,
}

static SCANNER: LazyLock<Option<Scanner>> = LazyLock::new(|| {
    let detectors = detectors();
    // ASCII semantics (`\d`, `\s`, `\b`, case folding) keep the automata small and fast;
    // every pattern anchors on ASCII, and matches are checked to fall on character
    // boundaries.
    let patterns: Vec<String> = detectors
        .iter()
        .map(|d| format!("(?-u){}", d.pattern))
        .collect();
    let set = RegexSet::new(&patterns).ok()?;
    let regexes = patterns
        .iter()
        .map(|p| Regex::new(p))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    Some(Scanner {
        detectors,
        set,
        regexes,
    })
});

/// Every personal-data and secret finding in `text`, in text order, none overlapping.
pub fn scan(text: &str) -> Vec<Finding> {
    scan_narrowed(text, true)
}

/// [`scan`], where `narrow` lets detectors run only on the parts of the text their matches
/// can lie in (the same findings, sooner; tests compare with the whole-text search).
fn scan_narrowed(text: &str, narrow: bool) -> Vec<Finding> {
    let Some(scanner) = SCANNER.as_ref() else {
        return Vec::new();
    };
    let mut accepted: Vec<Finding> = Vec::new();
    let bytes = text.as_bytes();
    for index in scanner.set.matches(bytes).iter() {
        let (Some(detector), Some(regex)) =
            (scanner.detectors.get(index), scanner.regexes.get(index))
        else {
            continue;
        };
        // The whole text, or the runs a match can lie in with a byte of context each side:
        // a match cannot take that byte, which is outside the run's class.
        let windows: Vec<(usize, usize)> = match detector.within.filter(|_| narrow) {
            None => vec![(0, bytes.len())],
            Some(within) => within
                .runs(bytes)
                .into_iter()
                .map(|run| (run.start.saturating_sub(1), (run.end + 1).min(bytes.len())))
                .collect(),
        };
        let mut candidates: Vec<Range<usize>> = Vec::new();
        for (offset, end) in windows {
            let haystack = bytes.get(offset..end).unwrap_or_default();
            let at = |m: regex::bytes::Match<'_>| offset + m.start()..offset + m.end();
            // Resolving capture groups costs a second engine run per match: only detectors
            // whose value is a group pay it.
            if detector.group == 0 {
                candidates.extend(regex.find_iter(haystack).map(at));
            } else {
                let values = regex.captures_iter(haystack);
                candidates.extend(values.filter_map(|c| c.get(detector.group)).map(at));
            }
        }
        for Range { start, end } in candidates {
            // Accepted findings never overlap, so in start order their ends are in order
            // too: only the last one starting before `end` can reach into the candidate.
            let at = accepted.partition_point(|f| f.start < end);
            if at
                .checked_sub(1)
                .and_then(|i| accepted.get(i))
                .is_some_and(|f| f.end > start)
            {
                continue;
            }
            let Some(value) = text.get(start..end) else {
                continue;
            };
            let Some((confidence, validator)) = (detector.check)(value) else {
                continue;
            };
            accepted.insert(
                at,
                Finding {
                    class: detector.class,
                    kind: detector.kind,
                    start,
                    end,
                    char_start: 0,
                    char_end: 0,
                    confidence,
                    validator,
                },
            );
        }
    }
    fill_char_offsets(text, &mut accepted);
    accepted
}

/// The runs of at least `min` bytes of a class, in text order. The class of every byte is
/// taken in a pass the compiler vectorises. A run of `2w - 1` bytes or more holds an
/// aligned `w`-byte word wholly of the class, one comparison to find; the run is measured
/// only around such a word. The widest such word is looked for: ordinary words often
/// hold a four-byte one, rarely an eight-byte one.
pub(crate) fn runs(bytes: &[u8], min: usize, class: impl Fn(u8) -> bool) -> Vec<Range<usize>> {
    let classes: Vec<u8> = bytes.iter().map(|b| u8::from(class(*b))).collect();
    let width = [16, 8, 4, 2, 1]
        .into_iter()
        .find(|w| 2 * w - 1 <= min)
        .unwrap_or(1);
    // The word's width is a constant of each instance, so that testing a word is one
    // comparison rather than a loop over its bytes.
    match width {
        16 => runs_around::<16>(bytes, &classes, min, &class),
        8 => runs_around::<8>(bytes, &classes, min, &class),
        4 => runs_around::<4>(bytes, &classes, min, &class),
        2 => runs_around::<2>(bytes, &classes, min, &class),
        _ => runs_around::<1>(bytes, &classes, min, &class),
    }
}

/// [`runs`] around the aligned `W`-byte words of `classes` (the class of each byte of
/// `bytes`, 1 for in) that are wholly of the class.
fn runs_around<const W: usize>(
    bytes: &[u8],
    classes: &[u8],
    min: usize,
    class: &impl Fn(u8) -> bool,
) -> Vec<Range<usize>> {
    let (words, _) = classes.as_chunks::<W>();
    let whole = words.iter().map(|word| *word == [1; W]);
    let outside = |b: &u8| !class(*b);
    let mut found = Vec::new();
    let mut resume = 0;
    for (start, _) in (0..).step_by(W).zip(whole).filter(|(_, whole)| *whole) {
        if start < resume {
            continue;
        }
        let before = bytes.get(..start).unwrap_or_default();
        let from = before.iter().rposition(outside).map_or(0, |i| i + 1);
        let after = bytes.get(start..).unwrap_or_default();
        let to = after
            .iter()
            .position(outside)
            .map_or(bytes.len(), |i| start + i);
        if to - from >= min {
            found.push(from..to);
        }
        resume = to;
    }
    found
}

/// Character offsets from byte offsets, in one walk over the text.
fn fill_char_offsets(text: &str, findings: &mut [Finding]) {
    // In ASCII, most text, characters are bytes.
    if text.is_ascii() {
        for f in findings.iter_mut() {
            (f.char_start, f.char_end) = (f.start, f.end);
        }
        return;
    }
    let mut boundaries: Vec<(usize, usize, bool)> = Vec::with_capacity(findings.len() * 2);
    for (i, f) in findings.iter().enumerate() {
        boundaries.push((f.start, i, true));
        boundaries.push((f.end, i, false));
    }
    boundaries.sort_unstable();
    let mut chars = 0usize;
    let mut last = 0usize;
    for (byte, i, is_start) in boundaries {
        chars += text.get(last..byte).map_or(0, |s| s.chars().count());
        last = byte;
        if let Some(f) = findings.get_mut(i) {
            if is_start {
                f.char_start = chars;
            } else {
                f.char_end = chars;
            }
        }
    }
}

/// Scans every text of the input's content — message contents, plain texts, document
/// texts, tool-call and tool arguments (each string within them) — and records the
/// findings with JSON pointers into the input; tool descriptions and schemas are checked
/// for poisoning.
pub fn inspect_input(input: &mut DecisionInput) {
    let mut spans: Vec<(Kind, Span)> = Vec::new();
    let mut add = |pointer: String, text: &str| {
        for f in scan(text) {
            spans.push((
                f.kind,
                Span {
                    class: f.class.to_string(),
                    pointer: pointer.clone(),
                    start: f.start as u64,
                    end: f.end as u64,
                    char_start: f.char_start as u64,
                    char_end: f.char_end as u64,
                    confidence: f.confidence,
                    validator: f.validator.to_string(),
                },
            ));
        }
    };
    let content = &input.content;
    for (i, message) in content.messages.iter().enumerate() {
        add(format!("/content/messages/{i}/content"), &message.content);
        for (j, call) in message.tool_calls.iter().enumerate() {
            strings(
                &call.arguments,
                &mut format!("/content/messages/{i}/tool_calls/{j}/arguments"),
                &mut add,
                0,
            );
        }
    }
    for (i, text) in content.texts.iter().enumerate() {
        add(format!("/content/texts/{i}"), text);
    }
    for (i, document) in content.documents.iter().enumerate() {
        add(format!("/content/documents/{i}/text"), &document.text);
    }
    if let Some(tool) = &content.tool {
        strings(
            &tool.arguments,
            &mut "/content/tool/arguments".to_string(),
            &mut add,
            0,
        );
    }
    for (kind, span) in spans {
        match kind {
            Kind::Pii => input.findings.pii.push(span),
            Kind::Secret => input.findings.secrets.push(span),
        }
    }
    for signal in poisoning::scan(&input.content.tools) {
        if !input.findings.tool_poisoning.contains(&signal) {
            input.findings.tool_poisoning.push(signal);
        }
    }
    assess_injection(input);
}

/// Scores prompt injection over the texts that can carry it: what the caller wrote
/// (`user` messages, plain texts) and what reached the model from elsewhere (`tool`
/// messages, documents not marked trusted). System and assistant messages are the
/// application's and the model's own. The input's score is the highest of any text; its
/// signals are all of theirs.
fn assess_injection(input: &mut DecisionInput) {
    use injection::{Origin, assess};
    let content = &input.content;
    let mut texts: Vec<(&str, Origin)> = Vec::new();
    for message in &content.messages {
        match message.role.as_str() {
            "user" => texts.push((&message.content, Origin::User)),
            "tool" | "function" => texts.push((&message.content, Origin::Untrusted)),
            _ => {}
        }
    }
    texts.extend(content.texts.iter().map(|t| (t.as_str(), Origin::User)));
    for document in &content.documents {
        let origin = if document.trusted {
            Origin::User
        } else {
            Origin::Untrusted
        };
        texts.push((&document.text, origin));
    }
    let mut score: f64 = 0.0;
    let mut signals = std::collections::BTreeSet::new();
    for (text, origin) in texts {
        if text.is_empty() {
            continue;
        }
        let assessment = assess(text, origin);
        score = score.max(assessment.score);
        signals.extend(assessment.signals.into_keys());
    }
    let injection = &mut input.findings.injection;
    injection.score = injection.score.max(score);
    for signal in signals {
        if !injection.signals.iter().any(|s| s == signal) {
            injection.signals.push(signal.to_string());
        }
    }
}

/// Deepest JSON nesting walked string by string; below it a value is scanned as its JSON
/// text, so nesting bounds the walk without hiding anything.
const MAX_DEPTH: usize = 64;

/// Visits every string in a JSON value with its pointer.
fn strings(
    value: &serde_json::Value,
    pointer: &mut String,
    visit: &mut impl FnMut(String, &str),
    depth: usize,
) {
    if depth > MAX_DEPTH {
        visit(pointer.clone(), &value.to_string());
        return;
    }
    match value {
        serde_json::Value::String(text) => visit(pointer.clone(), text),
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                strings(item, pointer, visit, depth + 1);
                pointer.truncate(len);
            }
        }
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                strings(item, pointer, visit, depth + 1);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// `text` with each finding replaced by what `replace` returns for it (the finding and its
/// text); `None` keeps it.
pub fn redact(text: &str, replace: impl Fn(&Finding, &str) -> Option<String>) -> String {
    replace_findings(text, &scan(text), replace)
}

/// `text` with the given findings (in text order, not overlapping, as [`scan`] returns
/// them) replaced by what `replace` returns for each.
pub fn replace_findings(
    text: &str,
    findings: &[Finding],
    replace: impl Fn(&Finding, &str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for f in findings {
        if f.start < last {
            continue;
        }
        let value = text.get(f.start..f.end).unwrap_or_default();
        if let Some(replacement) = replace(f, value) {
            out.push_str(text.get(last..f.start).unwrap_or_default());
            out.push_str(&replacement);
            last = f.end;
        }
    }
    out.push_str(text.get(last..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests;
