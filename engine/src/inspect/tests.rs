use super::*;

fn classes(text: &str) -> Vec<(&'static str, String)> {
    scan(text)
        .into_iter()
        .map(|f| (f.class, text[f.start..f.end].to_string()))
        .collect()
}

fn found(text: &str, class: &str, value: &str) {
    let got = classes(text);
    assert!(
        got.iter().any(|(c, v)| *c == class && v == value),
        "{class} `{value}` not found in {text:?}: {got:?}"
    );
}

fn nothing(text: &str) {
    let got = classes(text);
    assert!(got.is_empty(), "{text:?}: {got:?}");
}

#[test]
fn personal_data_is_found_and_validated() {
    for (text, class, value) in [
        (
            "mail jane.doe+x@example.co.uk now",
            "email",
            "jane.doe+x@example.co.uk",
        ),
        (
            "card 4111 1111 1111 1111.",
            "credit_card",
            "4111 1111 1111 1111",
        ),
        ("amex 3782-822463-10005", "credit_card", "3782-822463-10005"),
        (
            "IBAN GB82 WEST 1234 5698 7654 32 please",
            "iban",
            "GB82 WEST 1234 5698 7654 32",
        ),
        ("ssn 123-45-6789", "us_ssn", "123-45-6789"),
        ("SSN: 123456789", "us_ssn", "123456789"),
        ("from 192.168.10.4 today", "ipv4", "192.168.10.4"),
        (
            "host 2001:db8::8a2e:370:7334 up",
            "ipv6",
            "2001:db8::8a2e:370:7334",
        ),
        (
            "full 2001:0db8:85a3:0000:0000:8a2e:0370:7334.",
            "ipv6",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        ),
        (
            "link fe80::1ff:fe23:4567:890a%eth0",
            "ipv6",
            "fe80::1ff:fe23:4567:890a",
        ),
        ("mapped ::ffff:c000:280 here", "ipv6", "::ffff:c000:280"),
        ("call +44 20 7946 0958 now", "phone", "+44 20 7946 0958"),
        ("call (415) 555-2671", "phone", "(415) 555-2671"),
        ("call 415-555-2671", "phone", "415-555-2671"),
        ("I was born on 12/31/1990.", "date_of_birth", "12/31/1990"),
        ("DOB: March 3rd, 1985", "date_of_birth", "March 3rd, 1985"),
        ("passport number X1234567", "passport_number", "X1234567"),
        (
            "driver's license no. D123-4567-8901",
            "driver_license_number",
            "D123-4567-8901",
        ),
    ] {
        found(text, class, value);
    }
}

#[test]
fn look_alikes_are_not_findings() {
    nothing("card 4111 1111 1111 1112"); // Luhn fails
    nothing("order 1234 5678 9012 3456"); // no card network
    nothing("GB82 WEST 1234 5698 7654 33"); // mod 97 fails
    nothing("ssn 666-45-6789");
    nothing("version 1.2.300.4");
    nothing("meeting at 12:30:45");
    nothing("use std::collections::HashMap; see 1:2:3");
    nothing("the meeting is on 12/31/1990"); // a date without birth context
    nothing("passport control was slow");
    nothing("user@localhost"); // no domain
    nothing("call 123-456-7890"); // not a NANP area code
    nothing("ratio 3.14159 and 2.71828");
}

#[test]
fn secrets_are_found() {
    found(
        "key AKIAIOSFODNN7EXAMPLE",
        "aws_access_key",
        "AKIAIOSFODNN7EXAMPLE",
    );
    found(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    let ghp = format!("ghp_{}", "a1B2c3D4e5".repeat(4).get(..36).unwrap());
    found(&format!("token {ghp}"), "github_token", &ghp);
    found(
        "glpat-abcdefghij0123456789",
        "gitlab_token",
        "glpat-abcdefghij0123456789",
    );
    found(
        "xoxb-123456789012-abcdefghijkl",
        "slack_token",
        "xoxb-123456789012-abcdefghijkl",
    );
    let ant = format!("sk-ant-api03-{}", "Ab1_".repeat(24));
    found(
        &format!("ANTHROPIC_API_KEY={ant}"),
        "anthropic_api_key",
        &ant,
    );
    let oai = format!("sk-proj-{}", "Zx9y".repeat(12));
    found(&format!("use {oai}"), "openai_api_key", &oai);
    found(
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "stripe_key",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    );
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    found(&format!("Bearer {jwt}"), "jwt", jwt);
    found(
        "postgres://admin:s3cr3tP4ss@db:5432/x",
        "password_in_url",
        "s3cr3tP4ss",
    );
    found(
        "api_key: \"q8Zr2LmX0vPb7KsTw3\"",
        "generic_secret",
        "q8Zr2LmX0vPb7KsTw3",
    );
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----";
    found(&format!("key:\n{pem}\n"), "private_key", pem);
    let azure = format!("AccountKey={}==;", "Ab1+".repeat(22).get(..86).unwrap());
    assert_eq!(classes(&azure)[0].0, "azure_storage_key");
}

#[test]
fn secret_look_alikes_are_not_findings() {
    nothing("the password: changeme is bad but short");
    nothing("postgres://admin:${DB_PASSWORD}@db/x");
    nothing("token = aaaaaaaaaaaaaaaaaaaaaa"); // no entropy
    nothing("AKIA is a prefix"); // too short
}

#[test]
fn offsets_are_bytes_and_characters() {
    let text = "café ☕ mail: a.b@example.com";
    let f = &scan(text)[0];
    assert_eq!(&text[f.start..f.end], "a.b@example.com");
    let chars: Vec<char> = text.chars().collect();
    let by_chars: String = chars[f.char_start..f.char_end].iter().collect();
    assert_eq!(by_chars, "a.b@example.com");
    assert!(f.start > f.char_start);
    assert_eq!(f.validator, "syntax");
}

#[test]
fn inputs_get_findings_with_pointers_into_every_text() {
    let mut input: DecisionInput = serde_json::from_value(serde_json::json!({
        "version": "1", "id": "d", "time": "2026-01-01T00:00:00Z",
        "surface": "prompt", "action": "llm.chat",
        "principal": {"key_id": "k"}, "resource": {"kind": "model", "id": "m"},
        "content": {
            "messages": [{"role": "user", "content": "mail jane@example.com"}],
            "texts": ["card 4111111111111111"],
            "documents": [{"text": "key AKIAIOSFODNN7EXAMPLE"}],
            "tool": {"name": "t", "arguments": {"q": {"to": ["x", "bob@example.org"]}}}
        }
    }))
    .unwrap();
    inspect_input(&mut input);
    let pii: Vec<(&str, &str)> = input
        .findings
        .pii
        .iter()
        .map(|s| (s.class.as_str(), s.pointer.as_str()))
        .collect();
    assert_eq!(
        pii,
        [
            ("email", "/content/messages/0/content"),
            ("credit_card", "/content/texts/0"),
            ("email", "/content/tool/arguments/q/to/1"),
        ]
    );
    assert_eq!(
        input.findings.secrets[0].pointer,
        "/content/documents/0/text"
    );
    assert_eq!(input.findings.secrets[0].class, "aws_access_key");
}

#[test]
fn redaction_replaces_the_chosen_classes_only() {
    let text = "jane@example.com paid 4111 1111 1111 1111";
    let out = redact(text, |f, _| {
        (f.class == "credit_card").then(|| format!("[{}]", f.class.to_uppercase()))
    });
    assert_eq!(out, "jane@example.com paid [CREDIT_CARD]");
}

#[test]
fn hostile_input_stays_linear_and_never_panics() {
    let long = "1".repeat(1 << 20);
    let _ = scan(&long);
    let dashes = "1-".repeat(200_000);
    let _ = scan(&dashes);
    let at = "a@".repeat(200_000);
    let _ = scan(&at);
    let mixed: String = "é☕\u{200b}x".repeat(50_000);
    let _ = scan(&mixed);
    let mut deep = serde_json::json!("jane@example.com");
    for _ in 0..200 {
        deep = serde_json::json!([deep]);
    }
    let mut pointer = String::new();
    let mut seen = Vec::new();
    strings(
        &deep,
        &mut pointer,
        &mut |p, t| seen.push((p, t.to_string())),
        0,
    );
    assert_eq!(seen.len(), 1);
    assert!(seen[0].1.contains("jane@example.com"));
}

#[test]
fn names_and_addresses_best_effort() {
    for (text, class, value) in [
        (
            "Hi, my name is Olivia Hartmann and I need help",
            "person_name",
            "Olivia Hartmann",
        ),
        (
            "Please forward this to Dr. Okonkwo today",
            "person_name",
            "Okonkwo",
        ),
        (
            "Patient: Jonas Weber, admitted Monday",
            "person_name",
            "Jonas Weber",
        ),
        (
            "Meeting with Sarah Lindqvist at noon",
            "person_name",
            "Sarah Lindqvist",
        ),
        (
            "Ship it to 221B Baker Street, London",
            "street_address",
            "221B Baker Street, London",
        ),
        (
            "We moved to 1600 Pennsylvania Avenue, Washington, DC 20500.",
            "street_address",
            "1600 Pennsylvania Avenue, Washington, DC 20500",
        ),
        (
            "Adresse: Hauptstraße 12, Berlin",
            "street_address",
            "Hauptstraße 12",
        ),
        (
            "Livraison au 12 rue de Rivoli, Paris",
            "street_address",
            "12 rue de Rivoli",
        ),
    ] {
        found(text, class, value);
    }
    nothing("I'm Happy to help with that.");
    nothing("Thanks, Team");
    nothing("The Main Street Journal had 3 stories");
}

#[test]
fn a_cue_before_a_title_still_finds_the_name() {
    found(
        "Please contact Dr. Fernandes tomorrow",
        "person_name",
        "Fernandes",
    );
    found("Mrs. O'Brien called twice", "person_name", "O'Brien");
    nothing("The Park Avenue Journal ran 8 stories");
}

proptest::proptest! {
    /// `runs` finds the maximal runs of a class at least `min` long, as a plain split does.
    #[test]
    fn runs_are_the_long_maximal_runs_of_a_class(text in "(?:[ab]{0,40} ){0,4}", min in 1usize..40) {
        let mut expected = Vec::new();
        let mut at = 0;
        for run in text.split(' ') {
            if run.len() >= min {
                expected.push(at..at + run.len());
            }
            at += run.len() + 1;
        }
        proptest::prop_assert_eq!(runs(text.as_bytes(), min, |b| b != b' '), expected);
    }
}

/// Pieces of the texts the narrowed detectors look for, and of what surrounds them.
const PIECES: &[&str] = &[
    "my name is",
    "Regards,",
    "THIS IS",
    "thanks",
    "best",
    "Attn:",
    "Mr.",
    "Dr",
    "Mrs",
    "Ms",
    "Prof.",
    "dr",
    "mr.",
    "Olivia",
    "Hartmann",
    "O'Brien",
    "Smith-Jones",
    "Lee",
    "x",
    "at",
    "4111",
    "1111",
    "GB82",
    "WEST",
    "1234",
    "5698",
    "7654",
    "32",
    "+44",
    "20",
    "7946",
    "0958",
    "(415)",
    "555-2671",
    "10.20.30.40",
    "192.168.1.1",
    "00",
    "-",
    ".",
    "(",
    ")",
];

proptest::proptest! {
    /// Narrowing changes where detectors look, never what they find.
    #[test]
    fn narrowed_detectors_find_what_a_whole_text_search_finds(
        pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
        gaps in proptest::collection::vec(proptest::sample::select(&[" ", " ", ", ", "", "\n", ": "][..]), 40),
    ) {
        let text: String = pieces.iter().zip(&gaps).map(|(p, g)| format!("{p}{g}")).collect();
        proptest::prop_assert_eq!(scan_narrowed(&text, true), scan_narrowed(&text, false), "{:?}", text);
    }
}
