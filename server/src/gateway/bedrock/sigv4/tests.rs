//! Checked against AWS's SigV4 test suite (the `aws-sig-v4-test-suite` of AWS's
//! documentation, as kept in `awslabs/aws-c-auth/tests/aws-signing-test-suite/v4`): every
//! case signs as `AKIDEXAMPLE` at 2015-08-30T12:36:00Z in `us-east-1` for service `service`.

use super::*;

const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn suite_credentials(session_token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".to_string(),
        secret_access_key: SUITE_SECRET.to_string(),
        session_token: session_token.map(str::to_string),
    }
}

/// 2015-08-30T12:36:00Z.
fn suite_time() -> time::OffsetDateTime {
    match time::OffsetDateTime::from_unix_timestamp(1_440_938_160) {
        Ok(t) => t,
        Err(e) => unreachable!("a valid timestamp: {e}"),
    }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Signs as the original suite does: without `x-amz-content-sha256`.
fn suite_sign(
    method: &str,
    url: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    token: Option<&str>,
) -> Signed {
    let credentials = suite_credentials(token);
    let headers = headers(extra);
    let request = Request {
        method,
        url,
        headers: &headers,
        body,
    };
    let scope = Scope {
        credentials: &credentials,
        region: "us-east-1",
        service: "service",
        now: suite_time(),
        content_sha256: false,
    };
    match sign_request(request, scope) {
        Ok(signed) => signed,
        Err(e) => unreachable!("the suite's requests sign: {e}"),
    }
}

fn authorization(headers: &[(String, String)]) -> &str {
    headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

#[test]
fn get_vanilla_step_by_step() {
    let signed = suite_sign("GET", "https://example.amazonaws.com/", &[], b"", None);
    assert_eq!(
        signed.canonical_request,
        format!(
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY_SHA256}"
        )
    );
    assert_eq!(
        signed.string_to_sign,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
    assert_eq!(
        authorization(&signed.headers),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
    assert_eq!(
        signed.headers,
        headers(&[
            ("authorization", authorization(&signed.headers)),
            ("x-amz-date", "20150830T123600Z"),
        ])
    );
}

#[test]
fn post_x_www_form_urlencoded_step_by_step() {
    let signed = suite_sign(
        "POST",
        "https://example.amazonaws.com/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"Param1=value1",
        None,
    );
    assert_eq!(
        signed.canonical_request,
        "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    );
    assert_eq!(
        signed.string_to_sign,
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
    );
    assert_eq!(
        signed.signature,
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    );
}

/// One case of the suite: its name, the request, and the signed headers and signature
/// AWS publishes for it.
type SuiteCase<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [u8],
    &'a str,
    &'a str,
);

/// The suite's cases by name: request, signed headers, signature.
#[test]
fn suite_signatures() {
    let cases: &[SuiteCase<'_>] = &[
        (
            "get-vanilla",
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            &[],
            b"",
            "host;x-amz-date",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "get-vanilla-empty-query-key",
            "GET",
            "https://example.amazonaws.com/?Param1=value1",
            &[],
            b"",
            "host;x-amz-date",
            "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
        ),
        (
            "get-vanilla-query-unreserved",
            "GET",
            "https://example.amazonaws.com/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
            &[],
            b"",
            "host;x-amz-date",
            "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        ),
        (
            "get-vanilla-utf8-query",
            "GET",
            "https://example.amazonaws.com/?\u{1234}=bar",
            &[],
            b"",
            "host;x-amz-date",
            "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        ),
        (
            "get-utf8",
            "GET",
            "https://example.amazonaws.com/\u{1234}",
            &[],
            b"",
            "host;x-amz-date",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        ),
        (
            "get-space-normalized",
            "GET",
            "https://example.amazonaws.com/example space/",
            &[],
            b"",
            "host;x-amz-date",
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        ),
        (
            "get-slash-dot-slash-normalized",
            "GET",
            "https://example.amazonaws.com/./",
            &[],
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-relative-relative-normalized",
            "GET",
            "https://example.amazonaws.com/example1/example2/../..",
            &[],
            b"",
            "host;x-amz-date",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-slashes-normalized",
            "GET",
            "https://example.amazonaws.com//example//",
            &[],
            b"",
            "host;x-amz-date",
            "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
        ),
        (
            "get-header-value-trim",
            "GET",
            "https://example.amazonaws.com/",
            &[("My-Header1", " value1"), ("My-Header2", "\"a   b   c\"")],
            b"",
            "host;my-header1;my-header2;x-amz-date",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
        (
            "get-header-key-duplicate",
            "GET",
            "https://example.amazonaws.com/",
            &[
                ("My-Header1", "value2"),
                ("My-Header1", "value2"),
                ("My-Header1", "value1"),
            ],
            b"",
            "host;my-header1;x-amz-date",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        ),
        (
            "post-vanilla",
            "POST",
            "https://example.amazonaws.com/",
            &[],
            b"",
            "host;x-amz-date",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST",
            "https://example.amazonaws.com/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"Param1=value1",
            "content-type;host;x-amz-date",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ];
    for (name, method, url, extra, body, signed_headers, signature) in cases {
        let signed = suite_sign(method, url, extra, body, None);
        assert_eq!(
            authorization(&signed.headers),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
            ),
            "case {name}, canonical request:\n{}",
            signed.canonical_request
        );
    }
}

#[test]
fn get_vanilla_with_session_token() {
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let signed = suite_sign(
        "GET",
        "https://example.amazonaws.com/",
        &[],
        b"",
        Some(token),
    );
    assert_eq!(
        authorization(&signed.headers),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
    );
    assert!(
        signed
            .headers
            .contains(&("x-amz-security-token".to_string(), token.to_string()))
    );
}

/// The public function, content hash header included, against the suite's newer form of
/// `post-x-www-form-urlencoded` (`aws-c-auth`, which signs `x-amz-content-sha256`).
#[test]
fn sign_matches_the_suite_with_the_content_hash_header() {
    let result = sign(
        "POST",
        "https://example.amazonaws.com/",
        &headers(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", "13"),
        ]),
        b"Param1=value1",
        &suite_credentials(None),
        "us-east-1",
        "service",
        suite_time(),
    );
    let Ok(added) = result else {
        unreachable!("signs: {result:?}");
    };
    assert_eq!(
        added,
        headers(&[
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
            ),
            ("x-amz-date", "20150830T123600Z"),
            (
                "x-amz-content-sha256",
                "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
            ),
        ])
    );
}

#[test]
fn model_ids_are_encoded_on_the_wire_and_again_when_signed() {
    assert_eq!(
        encode_path_segment("anthropic.claude-3-5-sonnet-20240620-v1:0"),
        "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
    );
    assert_eq!(
        encode_path_segment(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0"
        ),
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-v1%3A0"
    );
    assert_eq!(encode_path_segment("a b~é"), "a%20b~%C3%A9");
    let signed = suite_sign(
        "POST",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
        &[("Content-Type", "application/json")],
        b"{}",
        None,
    );
    let uri = signed.canonical_request.lines().nth(1);
    assert_eq!(
        uri,
        Some("/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse")
    );
}

#[test]
fn host_comes_from_the_url_without_a_default_port() {
    for (url, host) in [
        (
            "https://Example.AmazonAWS.com:443/x",
            "example.amazonaws.com",
        ),
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080"),
        ("http://user:pw@localhost:80", "localhost"),
        ("https://example.com?a=b#frag", "example.com"),
    ] {
        let signed = suite_sign("GET", url, &[], b"", None);
        assert!(
            signed
                .canonical_request
                .contains(&format!("\nhost:{host}\n")),
            "{url}: {}",
            signed.canonical_request
        );
    }
    // A caller's own host header wins, and is not signed twice.
    let signed = suite_sign(
        "GET",
        "http://127.0.0.1:9000/",
        &[("Host", "bedrock-runtime.us-east-1.amazonaws.com")],
        b"",
        None,
    );
    assert!(
        signed
            .canonical_request
            .contains("\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-date")
    );
    assert!(signed.canonical_request.contains("\nhost;x-amz-date\n"));
}

#[test]
fn headers_the_signer_sets_replace_the_callers() {
    let signed = suite_sign(
        "GET",
        "https://example.amazonaws.com/",
        &[
            ("X-Amz-Date", "19990101T000000Z"),
            ("Authorization", "Bearer old"),
        ],
        b"",
        None,
    );
    assert_eq!(
        signed.signature,
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn the_date_is_taken_in_utc() {
    let Ok(offset) = time::UtcOffset::from_hms(2, 0, 0) else {
        unreachable!("a valid offset");
    };
    let local = suite_time().to_offset(offset);
    assert_eq!(amz_date(local), Ok("20150830T123600Z".to_string()));
}

#[test]
fn bad_requests_are_refused() {
    let credentials = suite_credentials(None);
    let sign_with = |method: &str, url: &str, region: &str, service: &str| {
        sign(
            method,
            url,
            &[],
            b"",
            &credentials,
            region,
            service,
            suite_time(),
        )
    };
    for (method, url, region, service) in [
        ("GET", "example.amazonaws.com/", "us-east-1", "bedrock"),
        (
            "GET",
            "ftp://example.amazonaws.com/",
            "us-east-1",
            "bedrock",
        ),
        ("GET", "https:///path", "us-east-1", "bedrock"),
        ("", "https://example.amazonaws.com/", "us-east-1", "bedrock"),
        (
            "GE T",
            "https://example.amazonaws.com/",
            "us-east-1",
            "bedrock",
        ),
        ("GET", "https://example.amazonaws.com/", "", "bedrock"),
        (
            "GET",
            "https://example.amazonaws.com/",
            "us/east",
            "bedrock",
        ),
        ("GET", "https://example.amazonaws.com/", "us-east-1", ""),
    ] {
        assert!(
            sign_with(method, url, region, service).is_err(),
            "{method} {url} {region} {service}"
        );
    }
    let bad_header = sign(
        "GET",
        "https://example.amazonaws.com/",
        &headers(&[("bad:name", "x")]),
        b"",
        &credentials,
        "us-east-1",
        "bedrock",
        suite_time(),
    );
    assert!(bad_header.is_err());
}

#[test]
fn debug_hides_the_secrets() {
    let shown = format!("{:?}", suite_credentials(Some("FwoGZXIvYXdzEXAMPLETOKEN")));
    assert!(shown.contains("AKIDEXAMPLE"));
    assert!(!shown.contains(SUITE_SECRET));
    assert!(!shown.contains("FwoGZXIvYXdzEXAMPLETOKEN"));
    assert!(shown.contains("<redacted>"));
}

#[test]
fn query_values_are_decoded_then_strictly_encoded() {
    assert_eq!(
        canonical_query("b=2&a=x%2fy&a=%20&c&=v&&d=a+b"),
        "=v&a=%20&a=x%2Fy&b=2&c=&d=a%2Bb"
    );
    assert_eq!(canonical_query(""), "");
    assert_eq!(canonical_query("bad=%zz%4"), "bad=%25zz%254");
}
