//! AWS Signature Version 4, header form, as every AWS service but S3 checks it.
//!
//! [`sign`] takes a request as it will go on the wire and returns the headers to add to it.
//! The canonical request follows AWS's rules for services other than S3:
//!
//! - the canonical URI is the request path, dot segments and repeated slashes removed,
//!   with each segment URI-encoded *again*: the path is signed as the server sees it once
//!   it has encoded what arrived. A Bedrock model id `...-v1:0` goes on the wire as
//!   `...-v1%3A0` (see [`encode_path_segment`]) and is signed as `...-v1%253A0`;
//! - the canonical query has each name and value decoded, strictly re-encoded, and sorted;
//! - every header given is signed (names lowercased and sorted, values trimmed with inner
//!   runs of spaces collapsed, repeated names joined with `,`), with `host`, `x-amz-date`,
//!   `x-amz-content-sha256` and, with temporary credentials, `x-amz-security-token`.
//!
//! Pure: the clock is an argument, so signatures are reproducible in tests.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The signing algorithm's name, as it appears in the string to sign and `authorization`.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Headers [`sign`] sets itself; a caller's own values for them are left out.
const SET_BY_SIGNER: [&str; 4] = [
    "authorization",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// AWS credentials: a long-term access key, or temporary ones with their session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (`AKIA...` or, for temporary credentials, `ASIA...`).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key id names the key without granting anything; the rest must never be logged.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Percent-encodes one path segment as AWS expects it on the wire: every byte but the
/// unreserved characters (`A-Z a-z 0-9 - _ . ~`) becomes `%XX`, so `:` becomes `%3A` and
/// `/` (inside an inference profile ARN) `%2F`.
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    uri_encode(s.as_bytes(), &mut out);
    out
}

/// The hex digit for a nibble (`n` < 16).
fn hex_char(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

fn uri_encode(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_char(b >> 4).to_ascii_uppercase());
            out.push(hex_char(b & 0x0f).to_ascii_uppercase());
        }
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` sequences; a `%` not followed by two hex digits stays as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex_digit),
                bytes.get(i + 2).copied().and_then(hex_digit),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(hex_char(b >> 4));
        out.push(hex_char(b & 0x0f));
    }
    out
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|e| format!("cannot key the request signature: {e}"))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// The parts of a URL the signature covers.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    /// The `host` header's value: the authority without user info or a default port.
    host: String,
    /// The path as sent (`/` when the URL has none).
    path: &'a str,
    /// The query as sent, without `?`.
    query: &'a str,
}

fn parse_url(url: &str) -> Result<Target<'_>, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("the url `{url}` has no scheme"))?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return Err(format!("the url `{url}` is not http or https")),
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at_checked(authority_end).unwrap_or((rest, ""));
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    if authority.is_empty() {
        return Err(format!("the url `{url}` has no host"));
    }
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    Ok(Target {
        host: authority.to_ascii_lowercase(),
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// The canonical URI: dot segments resolved, empty segments dropped (as AWS normalises
/// paths for every service but S3), each remaining segment encoded.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 8);
    out.push('/');
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode(segment.as_bytes(), &mut out);
    }
    if !segments.is_empty() && path.ends_with('/') {
        out.push('/');
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut encoded_name = String::new();
            uri_encode(&percent_decode(name), &mut encoded_name);
            let mut encoded_value = String::new();
            uri_encode(&percent_decode(value), &mut encoded_value);
            (encoded_name, encoded_value)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as signed: trimmed, inner runs of whitespace collapsed to one space.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `YYYYMMDD'T'HHMMSS'Z'` in UTC.
fn amz_date(now: time::OffsetDateTime) -> Result<String, String> {
    let now = now.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&now.year()) {
        return Err(format!("the year {} cannot be signed", now.year()));
    }
    Ok(format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    ))
}

/// A request to sign.
#[derive(Debug, Clone, Copy)]
struct Request<'a> {
    method: &'a str,
    url: &'a str,
    headers: &'a [(String, String)],
    body: &'a [u8],
}

/// Where and as whom to sign.
#[derive(Debug, Clone, Copy)]
struct Scope<'a> {
    credentials: &'a Credentials,
    region: &'a str,
    service: &'a str,
    now: time::OffsetDateTime,
    /// Whether `x-amz-content-sha256` is sent and signed. AWS's original test suite
    /// predates the header, so its vectors are checked without it.
    content_sha256: bool,
}

/// Everything computed on the way to a signature, kept for tests to compare step by step.
#[derive(Debug)]
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "the intermediate steps are read by the tests")
)]
struct Signed {
    canonical_request: String,
    string_to_sign: String,
    signature: String,
    headers: Vec<(String, String)>,
}

fn check_scope_part(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.contains(['/', ' ', '\n']) {
        return Err(format!(
            "the {what} `{value}` cannot be part of a signature scope"
        ));
    }
    Ok(())
}

fn sign_request(request: Request<'_>, scope: Scope<'_>) -> Result<Signed, String> {
    if request.method.is_empty() || !request.method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!("the method `{}` cannot be signed", request.method));
    }
    check_scope_part("region", scope.region)?;
    check_scope_part("service", scope.service)?;
    check_scope_part("access key id", &scope.credentials.access_key_id)?;
    let target = parse_url(request.url)?;
    let amz_date = amz_date(scope.now)?;
    let date = amz_date.get(..8).unwrap_or_default();
    let payload_hash = sha256_hex(request.body);

    let mut added = vec![("x-amz-date".to_string(), amz_date.clone())];
    if scope.content_sha256 {
        added.push(("x-amz-content-sha256".to_string(), payload_hash.clone()));
    }
    if let Some(token) = &scope.credentials.session_token {
        added.push(("x-amz-security-token".to_string(), token.clone()));
    }

    let mut signed_headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), canonical_value(value)))
        .filter(|(name, _)| !SET_BY_SIGNER.contains(&name.as_str()))
        .collect();
    if !signed_headers.iter().any(|(name, _)| name == "host") {
        signed_headers.push(("host".to_string(), target.host.clone()));
    }
    signed_headers.extend(added.iter().cloned());
    if let Some((name, _)) = signed_headers
        .iter()
        .find(|(name, _)| name.is_empty() || name.contains([':', '\n', ' ']))
    {
        return Err(format!("the header name `{name}` cannot be signed"));
    }
    // Stable: the values of a repeated header keep their order when joined.
    signed_headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical_headers = String::new();
    let mut names: Vec<&str> = Vec::new();
    for (name, value) in &signed_headers {
        if names.last() == Some(&name.as_str()) {
            canonical_headers.pop();
            canonical_headers.push(',');
        } else {
            names.push(name);
            canonical_headers.push_str(name);
            canonical_headers.push(':');
        }
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let names = names.join(";");

    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(target.path),
        canonical_query(target.query),
        canonical_headers,
        names,
        payload_hash
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let secret = format!("AWS4{}", scope.credentials.secret_access_key);
    let key = hmac(secret.as_bytes(), date.as_bytes())?;
    let key = hmac(&key, scope.region.as_bytes())?;
    let key = hmac(&key, scope.service.as_bytes())?;
    let key = hmac(&key, b"aws4_request")?;
    let signature = hex(&hmac(&key, string_to_sign.as_bytes())?);

    let mut headers = vec![(
        "authorization".to_string(),
        format!(
            "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={names}, Signature={signature}",
            scope.credentials.access_key_id
        ),
    )];
    headers.extend(added);
    Ok(Signed {
        canonical_request,
        string_to_sign,
        signature,
        headers,
    })
}

/// Signs a request and returns the headers to add to it: `authorization`, `x-amz-date`,
/// `x-amz-content-sha256` and, for temporary credentials, `x-amz-security-token`.
///
/// `url` is the URL exactly as it will be sent (path segments already encoded, see
/// [`encode_path_segment`]); `headers` are the request headers to sign, which must reach
/// AWS unchanged (leave out hop-by-hop headers a proxy may rewrite). The `host` signed is
/// the one in `headers` if given, else the URL's authority without a default port, which
/// is what HTTP clients send. Values given for the headers this function sets are
/// ignored. Fails on a URL that is not http(s), a method that is not a plain token, or a
/// region, service or key id that cannot be part of a scope.
#[expect(
    clippy::too_many_arguments,
    reason = "the request and the signing scope are all needed, and two single-use structs would only rename them"
)]
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: time::OffsetDateTime,
) -> Result<Vec<(String, String)>, String> {
    let request = Request {
        method,
        url,
        headers,
        body,
    };
    let scope = Scope {
        credentials,
        region,
        service,
        now,
        content_sha256: true,
    };
    sign_request(request, scope).map(|signed| signed.headers)
}

#[cfg(test)]
mod tests;
