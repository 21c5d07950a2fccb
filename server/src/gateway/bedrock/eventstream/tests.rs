use super::*;

/// `{'foo':'bar'}`, the payload of `aws-c-event-stream`'s serializer tests.
const FOO_BAR: &[u8] = b"{'foo':'bar'}";

/// `aws-c-event-stream`'s `test_incoming_no_op_valid`: no headers, no payload.
const EMPTY_MESSAGE: [u8; 16] = [
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff,
];

/// `test_incoming_application_data_no_headers_valid`.
const NO_HEADERS: [u8; 29] = [
    0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66, 0x6f,
    0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
];

/// `test_incoming_application_one_compressed_header_pair_valid`: one string header.
fn one_string_header() -> Vec<u8> {
    let mut bytes = vec![
        0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C,
    ];
    bytes.extend_from_slice(b"content-type");
    bytes.extend_from_slice(&[0x07, 0x00, 0x10]);
    bytes.extend_from_slice(b"application/json");
    bytes.extend_from_slice(FOO_BAR);
    bytes.extend_from_slice(&[0x8D, 0x9C, 0x08, 0xB1]);
    bytes
}

/// `test_incoming_application_int32_header_valid`: one integer header.
fn one_int_header() -> Vec<u8> {
    let mut bytes = vec![
        0x00, 0x00, 0x00, 0x2B, 0x00, 0x00, 0x00, 0x0E, 0x34, 0x8B, 0xEC, 0x7B, 0x08,
    ];
    bytes.extend_from_slice(b"event-id");
    bytes.extend_from_slice(&[0x04, 0x00, 0x00, 0xA0, 0x0C]);
    bytes.extend_from_slice(FOO_BAR);
    bytes.extend_from_slice(&[0xD3, 0x89, 0x02, 0x85]);
    bytes
}

fn decode_all(bytes: &[u8]) -> Vec<Frame> {
    let mut decoder = Decoder::new();
    let frames = match decoder.push(bytes) {
        Ok(frames) => frames,
        Err(e) => unreachable!("decodes: {e}"),
    };
    assert_eq!(decoder.finish(), Ok(()));
    frames
}

/// A frame built by hand: raw header bytes, checksums computed.
fn raw_frame(header_bytes: &[u8], payload: &[u8]) -> Vec<u8> {
    let total = 16 + header_bytes.len() + payload.len();
    let mut out = Vec::new();
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(header_bytes);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn bedrock_stream() -> Vec<u8> {
    let event = |kind: &str, payload: &str| {
        encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    };
    let mut bytes = Vec::new();
    bytes.extend(event("messageStart", r#"{"p":"abcd","role":"assistant"}"#));
    bytes.extend(event(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"Hello, wörld"},"p":"abcdefghij"}"#,
    ));
    bytes.extend(event("contentBlockStop", r#"{"contentBlockIndex":0}"#));
    bytes.extend(event("messageStop", r#"{"stopReason":"end_turn"}"#));
    bytes.extend(EMPTY_MESSAGE);
    bytes
}

#[test]
fn encodes_the_official_vectors() {
    assert_eq!(encode(&[], b""), EMPTY_MESSAGE);
    assert_eq!(encode(&[], FOO_BAR), NO_HEADERS);
    assert_eq!(
        encode(&[("content-type", "application/json")], FOO_BAR),
        one_string_header()
    );
}

#[test]
fn decodes_the_official_vectors() {
    assert_eq!(
        decode_all(&EMPTY_MESSAGE),
        vec![Frame {
            headers: vec![],
            payload: vec![]
        }]
    );
    assert_eq!(
        decode_all(&NO_HEADERS),
        vec![Frame {
            headers: vec![],
            payload: FOO_BAR.to_vec()
        }]
    );
    let frames = decode_all(&one_string_header());
    assert_eq!(frames.len(), 1);
    assert_eq!(
        frames.first().and_then(|f| f.header("content-type")),
        Some("application/json")
    );
    assert_eq!(
        decode_all(&one_int_header()),
        vec![Frame {
            headers: vec![("event-id".to_string(), HeaderValue::Int(0x0000_A00C))],
            payload: FOO_BAR.to_vec()
        }]
    );
}

#[test]
fn round_trips() {
    let headers = [
        (":event-type", "contentBlockDelta"),
        (":content-type", "application/json"),
        (":message-type", "event"),
        ("empty", ""),
        ("unicode", "héllo ☃"),
    ];
    let payload = br#"{"contentBlockIndex":0,"delta":{"text":"hi"}}"#;
    let frames = decode_all(&encode(&headers, payload));
    let [frame] = frames.as_slice() else {
        unreachable!("one frame: {frames:?}");
    };
    assert_eq!(frame.payload, payload);
    let expected: Vec<(String, HeaderValue)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), HeaderValue::String(v.to_string())))
        .collect();
    assert_eq!(frame.headers, expected);
    assert_eq!(frame.event_type(), Some("contentBlockDelta"));
    assert_eq!(frame.message_type(), Some("event"));
    assert_eq!(frame.exception_type(), None);
    assert_eq!(frame.header("unicode"), Some("héllo ☃"));
}

#[test]
fn every_split_point_gives_the_same_frames() {
    let bytes = bedrock_stream();
    let whole = decode_all(&bytes);
    assert_eq!(whole.len(), 5);
    for split in 0..=bytes.len() {
        let (a, b) = bytes.split_at(split);
        let mut decoder = Decoder::new();
        let mut frames = decoder.push(a).unwrap_or_else(|e| unreachable!("{e}"));
        frames.extend(decoder.push(b).unwrap_or_else(|e| unreachable!("{e}")));
        assert_eq!(frames, whole, "split at {split}");
        assert_eq!(decoder.finish(), Ok(()));
        assert_eq!(decoder.buffered(), 0);
    }
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    for byte in &bytes {
        frames.extend(
            decoder
                .push(std::slice::from_ref(byte))
                .unwrap_or_else(|e| unreachable!("{e}")),
        );
    }
    assert_eq!(frames, whole);
}

#[test]
fn a_corrupted_byte_anywhere_is_detected() {
    let bytes = encode(
        &[(":event-type", "messageStop")],
        br#"{"stopReason":"end_turn"}"#,
    );
    for at in 0..bytes.len() {
        let mut corrupted = bytes.clone();
        if let Some(b) = corrupted.get_mut(at) {
            *b ^= 0x01;
        }
        let mut decoder = Decoder::new();
        let result = decoder.push(&corrupted);
        // A corrupted length may also just leave the decoder waiting for more bytes.
        match result {
            Err(_) => {}
            Ok(frames) => {
                assert!(frames.is_empty(), "byte {at}: {frames:?}");
                assert!(decoder.finish().is_err(), "byte {at}");
            }
        }
    }
}

#[test]
fn checksum_errors_are_named() {
    let mut bytes = encode(&[], FOO_BAR);
    if let Some(b) = bytes.get_mut(8) {
        *b ^= 0xff;
    }
    assert!(matches!(
        Decoder::new().push(&bytes),
        Err(FrameError::PreludeChecksum { .. })
    ));
    let mut bytes = encode(&[], FOO_BAR);
    if let Some(b) = bytes.get_mut(14) {
        *b ^= 0xff;
    }
    assert!(matches!(
        Decoder::new().push(&bytes),
        Err(FrameError::MessageChecksum { .. })
    ));
}

#[test]
fn an_error_ends_the_stream() {
    let mut bad = encode(&[], FOO_BAR);
    if let Some(b) = bad.last_mut() {
        *b ^= 0xff;
    }
    let mut decoder = Decoder::new();
    let first = decoder.push(&bad);
    assert!(first.is_err());
    assert_eq!(decoder.push(&EMPTY_MESSAGE), first);
    assert_eq!(decoder.finish().err(), first.err());
}

#[test]
fn a_truncated_frame_at_the_end_is_reported() {
    let bytes = bedrock_stream();
    let cut = bytes.len() - 3;
    let mut decoder = Decoder::new();
    let frames = decoder
        .push(bytes.get(..cut).unwrap_or_default())
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(frames.len(), 4);
    assert_eq!(decoder.finish(), Err(FrameError::Truncated(13)));
    // A stream cut inside the prelude too.
    let mut decoder = Decoder::new();
    assert_eq!(decoder.push(&EMPTY_MESSAGE[..5]), Ok(vec![]));
    assert_eq!(decoder.finish(), Err(FrameError::Truncated(5)));
}

#[test]
fn absurd_lengths_are_refused_from_the_prelude_alone() {
    let prelude = |total: u32, headers: u32| {
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    };
    assert_eq!(
        Decoder::new().push(&prelude(u32::MAX, 0)),
        Err(FrameError::TooLarge(u32::MAX as usize))
    );
    assert_eq!(
        Decoder::new().push(&prelude(16 * 1024 * 1024 + 1, 0)),
        Err(FrameError::TooLarge(16 * 1024 * 1024 + 1))
    );
    assert_eq!(
        Decoder::new().push(&prelude(15, 0)),
        Err(FrameError::TooShort(15))
    );
    assert_eq!(
        Decoder::new().push(&prelude(20, 5)),
        Err(FrameError::HeadersTooLong {
            headers: 5,
            total: 20
        })
    );
    // The largest allowed frame is awaited, not refused.
    let mut decoder = Decoder::new();
    assert_eq!(decoder.push(&prelude(16 * 1024 * 1024, 0)), Ok(vec![]));
}

#[test]
fn every_header_type_is_read() {
    let mut headers = Vec::new();
    let mut add = |name: &str, kind: u8, value: &[u8]| {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(kind);
        headers.extend_from_slice(value);
    };
    add("t", 0, &[]);
    add("f", 1, &[]);
    add("byte", 2, &[0xff]);
    add("short", 3, &(-2i16).to_be_bytes());
    add("int", 4, &7i32.to_be_bytes());
    add("long", 5, &(-9i64).to_be_bytes());
    add("bytes", 6, &[0x00, 0x02, 0xde, 0xad]);
    add("string", 7, &[0x00, 0x02, b'o', b'k']);
    add("time", 8, &1_700_000_000_000i64.to_be_bytes());
    add("uuid", 9, &[7; 16]);
    let frames = decode_all(&raw_frame(&headers, b"x"));
    let [frame] = frames.as_slice() else {
        unreachable!("one frame");
    };
    let values: Vec<HeaderValue> = frame.headers.iter().map(|(_, v)| v.clone()).collect();
    assert_eq!(
        values,
        vec![
            HeaderValue::Bool(true),
            HeaderValue::Bool(false),
            HeaderValue::Byte(-1),
            HeaderValue::Short(-2),
            HeaderValue::Int(7),
            HeaderValue::Long(-9),
            HeaderValue::Bytes(vec![0xde, 0xad]),
            HeaderValue::String("ok".to_string()),
            HeaderValue::Timestamp(1_700_000_000_000),
            HeaderValue::Uuid([7; 16]),
        ]
    );
    // Only string headers answer `header`.
    assert_eq!(frame.header("string"), Some("ok"));
    assert_eq!(frame.header("int"), None);
}

#[test]
fn malformed_headers_are_refused() {
    for headers in [
        &[0u8, 7, 0, 0][..],                 // empty name
        &[1, b'a', 10][..],                  // unknown type
        &[1, b'a', 7, 0, 5, b'x'][..],       // value cut short
        &[1, b'a', 4, 0, 0][..],             // integer cut short
        &[5, b'a'][..],                      // name cut short
        &[1, b'a', 7, 0, 2, 0xff, 0xfe][..], // value not UTF-8
        &[2, 0xc3, 0x28, 7, 0, 0][..],       // name not UTF-8
    ] {
        let result = Decoder::new().push(&raw_frame(headers, b""));
        assert!(
            matches!(result, Err(FrameError::Header(_))),
            "{headers:?}: {result:?}"
        );
    }
}

#[test]
fn overlong_headers_are_clipped_on_a_character_boundary() {
    let name = "n".repeat(300);
    let value = "é".repeat(40_000);
    let frames = decode_all(&encode(&[(&name, &value)], b""));
    let [frame] = frames.as_slice() else {
        unreachable!("one frame");
    };
    let [(decoded_name, HeaderValue::String(decoded_value))] = frame.headers.as_slice() else {
        unreachable!("one string header");
    };
    assert_eq!(decoded_name.len(), 255);
    assert_eq!(decoded_value.len(), 65_534);
}

#[test]
fn errors_read_well() {
    assert_eq!(
        FrameError::TooLarge(20_000_000).to_string(),
        "an event stream frame declares 20000000 bytes, more than the 16777216 allowed"
    );
    assert_eq!(
        FrameError::MessageChecksum {
            found: 1,
            computed: 0xdead_beef
        }
        .to_string(),
        "an event stream frame's checksum is 0x00000001, expected 0xdeadbeef"
    );
}
