//! Validators that confirm a match beyond its shape: checksums, number-allocation rules,
//! entropy, decodable structure. Each is a pure function of the matched text.

/// The digits of `text`, ignoring separators.
pub fn digits(text: &str) -> Vec<u8> {
    text.bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect()
}

/// The Luhn checksum of a card number.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(*d);
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

fn prefix(digits: &[u8], len: usize) -> u32 {
    digits
        .iter()
        .take(len)
        .fold(0u32, |n, d| n * 10 + u32::from(*d))
}

/// The card network whose issuer ranges and lengths fit `digits`.
pub fn card_network(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    let p1 = prefix(digits, 1);
    let p2 = prefix(digits, 2);
    let p3 = prefix(digits, 3);
    let p4 = prefix(digits, 4);
    let p6 = prefix(digits, 6);
    if p2 == 34 || p2 == 37 {
        return (len == 15).then_some("amex");
    }
    if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
        return (len == 16).then_some("mastercard");
    }
    if p1 == 4 {
        return matches!(len, 13 | 16 | 19).then_some("visa");
    }
    if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6) {
        return (16..=19).contains(&len).then_some("discover");
    }
    if (3528..=3589).contains(&p4) {
        return (16..=19).contains(&len).then_some("jcb");
    }
    if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 {
        return (14..=19).contains(&len).then_some("diners");
    }
    if p2 == 62 {
        return (16..=19).contains(&len).then_some("unionpay");
    }
    if p2 == 50 || (56..=69).contains(&p2) {
        return (12..=19).contains(&len).then_some("maestro");
    }
    None
}

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NL", 18),
    ("NO", 15),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// An IBAN: the country's length and the ISO 13616 mod-97 check.
pub fn iban(text: &str) -> bool {
    let compact: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|b| b.to_ascii_uppercase())
        .collect();
    let Some(country) = compact.get(..2).and_then(|c| std::str::from_utf8(c).ok()) else {
        return false;
    };
    let Some((_, length)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country) else {
        return false;
    };
    if compact.len() != *length || !compact.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder = 0u32;
    for b in tail.iter().chain(head) {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// A US social security number: area not 000, 666 or 900–999; group not 00; serial not
/// 0000.
pub fn ssn(digits: &[u8]) -> bool {
    if digits.len() != 9 {
        return false;
    }
    let area = prefix(digits, 3);
    let group = prefix(digits.get(3..).unwrap_or_default(), 2);
    let serial = prefix(digits.get(5..).unwrap_or_default(), 4);
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Shannon entropy in bits per character.
pub fn entropy(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in text.bytes() {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let len = text.len() as f64;
    if len == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / len;
            -p * p.log2()
        })
        .sum()
}

/// Whether a token mixes at least two of lower case, upper case and digits, as generated
/// secrets do and words do not.
pub fn mixed(text: &str) -> bool {
    let lower = text.bytes().any(|b| b.is_ascii_lowercase());
    let upper = text.bytes().any(|b| b.is_ascii_uppercase());
    let digit = text.bytes().any(|b| b.is_ascii_digit());
    u8::from(lower) + u8::from(upper) + u8::from(digit) >= 2
}

/// Decodes unpadded base64url (as in JWTs); `None` on a character outside the alphabet.
pub fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for b in text.bytes() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// A JWT whose header decodes to a JSON object naming an `alg`.
pub fn jwt(text: &str) -> bool {
    let Some(header) = text.split('.').next() else {
        return false;
    };
    base64url(header)
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v.get("alg").is_some())
}

/// A calendar date in a numeric form (`d/m/y`, `m/d/y`, `y-m-d`): plausible day, month
/// and a year between 1900 and 2100 (two-digit years allowed).
pub fn numeric_date(text: &str) -> bool {
    let parts: Vec<u32> = text
        .split(['/', '.', '-'])
        .filter_map(|p| p.parse().ok())
        .collect();
    let [a, b, c] = parts.as_slice() else {
        return true; // a written month: the pattern already constrained it
    };
    let year_ok = |y: u32| y < 100 || (1900..=2100).contains(&y);
    let day_month = |d: u32, m: u32| (1..=31).contains(&d) && (1..=12).contains(&m);
    if *a > 31 {
        return year_ok(*a) && day_month(*c, *b);
    }
    year_ok(*c) && (day_month(*a, *b) || day_month(*b, *a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_networks() {
        assert!(luhn(&digits("4111 1111 1111 1111")));
        assert!(!luhn(&digits("4111 1111 1111 1112")));
        assert_eq!(card_network(&digits("4111111111111111")), Some("visa"));
        assert_eq!(card_network(&digits("378282246310005")), Some("amex"));
        assert_eq!(
            card_network(&digits("5555555555554444")),
            Some("mastercard")
        );
        assert_eq!(
            card_network(&digits("2223003122003222")),
            Some("mastercard")
        );
        assert_eq!(card_network(&digits("6011111111111117")), Some("discover"));
        assert_eq!(card_network(&digits("3530111333300000")), Some("jcb"));
        assert_eq!(card_network(&digits("1234567812345670")), None);
        assert_eq!(card_network(&digits("41111111111111")), None, "visa length");
    }

    #[test]
    fn ibans() {
        assert!(iban("GB82 WEST 1234 5698 7654 32"));
        assert!(iban("DE89370400440532013000"));
        assert!(!iban("DE89370400440532013001"), "checksum");
        assert!(!iban("DE8937040044053201300"), "length");
        assert!(!iban("ZZ89370400440532013000"), "country");
    }

    #[test]
    fn ssns() {
        assert!(ssn(&digits("123-45-6789")));
        for bad in [
            "000-45-6789",
            "666-45-6789",
            "912-45-6789",
            "123-00-6789",
            "123-45-0000",
        ] {
            assert!(!ssn(&digits(bad)), "{bad}");
        }
    }

    #[test]
    fn entropy_jwt_dates() {
        assert!(entropy("aaaaaaaaaaaaaaaa") < 0.1);
        assert!(entropy("q8Zr2LmX0vPb7KsT") > 3.5);
        assert!(jwt(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        ));
        assert!(!jwt("eyJub3RhbGciOjF9.eyJ4IjoxfQ.abc"));
        assert!(numeric_date("12/31/1990"));
        assert!(numeric_date("1990-12-31"));
        assert!(!numeric_date("13/13/1990"));
        assert!(!numeric_date("12/31/1850"));
        assert_eq!(base64url("aGk"), Some(b"hi".to_vec()));
    }
}
