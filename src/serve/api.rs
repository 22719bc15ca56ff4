//! The ingest protocol's request bodies (extension/PROTOCOL.md), validated field by field.
//!
//! Every refusal is an [`ApiError`]: an HTTP status, a stable code and a message that names
//! the field and says what was expected, e.g. `heartbeats[2].time: expected an RFC 3339 time
//! such as "2026-11-24T10:00:05Z"`. A batch is accepted whole or refused whole, so a client
//! never has to work out which half of its queue was stored.

use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::store::web::{Heartbeat, Observation};

/// The protocol version this server speaks.
pub const PROTOCOL: u32 = 1;
/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;
/// Most heartbeats in one request.
pub const MAX_HEARTBEATS: usize = 100;
/// Most observations in one request.
pub const MAX_OBSERVATIONS: usize = 500;
/// Longest heartbeat duration accepted (seconds): the extension merges a stay into one
/// heartbeat, but a day without a single report is not one stay.
pub const MAX_DURATION_S: f64 = 86_400.0;
/// How far in the future a report may claim to be (the browser runs on this machine: only
/// clock adjustments between the two readings separate them).
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;

/// A refusal, as the client sees it: `{"error": code, "message": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", message)
    }
    /// The JSON body sent with the status.
    pub fn body(&self) -> String {
        serde_json::json!({"error": self.code, "message": self.message}).to_string()
    }
}

/// Parse and validate a `POST /v1/heartbeats` body.
pub fn heartbeats(body: &[u8], now_ms: i64) -> Result<Vec<Heartbeat>, ApiError> {
    let root = object(body)?;
    let items = array(&root, "heartbeats", MAX_HEARTBEATS)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("heartbeats[{i}]");
            let o = item
                .as_object()
                .ok_or_else(|| ApiError::bad_request(format!("{at}: expected an object")))?;
            let browser = browser(o, &at)?;
            let host = match o.get("host") {
                None => {
                    return Err(ApiError::bad_request(format!(
                        "{at}.host: missing (a host name, or null when no tab is active)"
                    )));
                }
                Some(Value::Null) => None,
                Some(v) => Some(host(v, &format!("{at}.host"))?),
            };
            let time_ms = time(o, &at, now_ms)?;
            let duration_ms = match o.get("duration") {
                None | Some(Value::Null) => 0,
                Some(v) => {
                    let d = v.as_f64().ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "{at}.duration: expected a number of seconds, got {}",
                            kind(v)
                        ))
                    })?;
                    if !(0.0..=MAX_DURATION_S).contains(&d) {
                        return Err(ApiError::bad_request(format!(
                            "{at}.duration: {d} is out of range (0 to {MAX_DURATION_S} seconds)"
                        )));
                    }
                    (d * 1000.0).round() as i64
                }
            };
            let private = match o.get("private") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(v) => {
                    return Err(ApiError::bad_request(format!(
                        "{at}.private: expected true or false, got {}",
                        kind(v)
                    )));
                }
            };
            Ok(Heartbeat {
                browser,
                host,
                time_ms,
                duration_ms,
                private,
            })
        })
        .collect()
}

/// Parse and validate a `POST /v1/observations` body.
pub fn observations(body: &[u8], now_ms: i64) -> Result<Vec<Observation>, ApiError> {
    let root = object(body)?;
    let items = array(&root, "observations", MAX_OBSERVATIONS)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("observations[{i}]");
            let o = item
                .as_object()
                .ok_or_else(|| ApiError::bad_request(format!("{at}: expected an object")))?;
            let browser = browser(o, &at)?;
            let host = match o.get("host") {
                Some(v) if !v.is_null() => host(v, &format!("{at}.host"))?,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "{at}.host: missing (the host name the address served)"
                    )));
                }
            };
            let ip = match o.get("ip") {
                Some(Value::String(s)) => s.parse::<IpAddr>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "{at}.ip: {:?} is not an IPv4 or IPv6 address (no port, no brackets)",
                        crate::text::excerpt(s, 80)
                    ))
                })?,
                Some(v) => {
                    return Err(ApiError::bad_request(format!(
                        "{at}.ip: expected an address string, got {}",
                        kind(v)
                    )));
                }
                None => return Err(ApiError::bad_request(format!("{at}.ip: missing"))),
            };
            let time_ms = time(o, &at, now_ms)?;
            Ok(Observation {
                browser,
                host,
                ip,
                time_ms,
            })
        })
        .collect()
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body is not valid JSON ({e}); send a JSON object"
        ))
    })?;
    match v {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::bad_request(format!(
            "expected a JSON object, got {}",
            kind(&other)
        ))),
    }
}

fn array<'a>(
    root: &'a Map<String, Value>,
    field: &str,
    max: usize,
) -> Result<&'a [Value], ApiError> {
    match root.get(field) {
        Some(Value::Array(items)) if items.len() <= max => Ok(items),
        Some(Value::Array(items)) => Err(ApiError::bad_request(format!(
            "{field}: {} items is too many (at most {max} per request; send the rest in \
             another request)",
            items.len()
        ))),
        Some(v) => Err(ApiError::bad_request(format!(
            "{field}: expected an array, got {}",
            kind(v)
        ))),
        None => Err(ApiError::bad_request(format!("{field}: missing"))),
    }
}

fn browser(o: &Map<String, Value>, at: &str) -> Result<String, ApiError> {
    match o.get("browser") {
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n == 0 || n > 64 || s.trim().is_empty() {
                return Err(ApiError::bad_request(format!(
                    "{at}.browser: must be 1 to 64 characters"
                )));
            }
            if s.chars().any(char::is_control) {
                return Err(ApiError::bad_request(format!(
                    "{at}.browser: must not contain control characters"
                )));
            }
            Ok(s.trim().to_string())
        }
        Some(v) => Err(ApiError::bad_request(format!(
            "{at}.browser: expected a string, got {}",
            kind(v)
        ))),
        None => Err(ApiError::bad_request(format!("{at}.browser: missing"))),
    }
}

/// A host name as the protocol allows it: lower case (folded here), no scheme, port, path,
/// query or user; an IPv6 literal in brackets.
fn host(v: &Value, at: &str) -> Result<String, ApiError> {
    let Value::String(s) = v else {
        return Err(ApiError::bad_request(format!(
            "{at}: expected a host name string or null, got {}",
            kind(v)
        )));
    };
    let h = s.to_ascii_lowercase();
    let h = h.strip_suffix('.').unwrap_or(&h);
    let bad = || {
        ApiError::bad_request(format!(
            "{at}: {:?} is not a host name (send only the host, such as \"www.bbc.co.uk\": no \
             scheme, port, path or query)",
            crate::text::excerpt(s, 80)
        ))
    };
    if h.is_empty() || h.len() > 253 {
        return Err(bad());
    }
    if let Some(inner) = h.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(bad)?;
        inner.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        return Ok(h.to_string());
    }
    let ok = h.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !ok {
        return Err(bad());
    }
    Ok(h.to_string())
}

fn time(o: &Map<String, Value>, at: &str, now_ms: i64) -> Result<i64, ApiError> {
    let expected = "expected an RFC 3339 time such as \"2026-11-24T10:00:05.120Z\"";
    let s = match o.get("time") {
        Some(Value::String(s)) => s,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "{at}.time: {expected}, got {}",
                kind(v)
            )));
        }
        None => return Err(ApiError::bad_request(format!("{at}.time: missing"))),
    };
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{at}.time: {expected}, got {:?}",
                crate::text::excerpt(s, 80)
            ))
        })?
        .timestamp_millis();
    if t > now_ms + MAX_FUTURE_MS {
        return Err(ApiError::bad_request(format!(
            "{at}.time: {s} is in the future (this machine's clock says {}); check the clock",
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        )));
    }
    Ok(t)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_860_000_000; // 2026-11-28T...

    fn hb(json: &str) -> Result<Vec<Heartbeat>, ApiError> {
        heartbeats(json.as_bytes(), NOW)
    }

    fn message(r: Result<Vec<Heartbeat>, ApiError>) -> String {
        let e = r.expect_err("refused");
        assert_eq!((e.status, e.code), (400, "bad_request"));
        e.message
    }

    #[test]
    fn a_valid_batch_is_parsed_with_defaults() {
        let v = hb(r#"{"heartbeats": [
            {"browser": "Zen", "host": "WWW.BBC.co.uk", "time": "2026-11-24T10:00:05.120Z",
             "duration": 20.5, "private": true, "extra": 1},
            {"browser": "Zen", "host": null, "time": "2026-11-24T11:00:05+01:00"}
        ]}"#)
        .expect("valid");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].host.as_deref(), Some("www.bbc.co.uk"));
        assert_eq!(v[0].duration_ms, 20_500);
        assert!(v[0].private);
        assert_eq!(v[1].host, None);
        assert_eq!(v[1].time_ms, v[0].time_ms - 120);
        assert_eq!((v[1].duration_ms, v[1].private), (0, false));
    }

    #[test]
    fn each_bad_field_is_named_with_what_was_expected() {
        let ok = r#""browser": "Zen", "host": "a.com", "time": "2026-11-24T10:00:05Z""#;
        for (body, needle) in [
            ("not json".to_string(), "not valid JSON"),
            ("[1]".to_string(), "expected a JSON object, got an array"),
            ("{}".to_string(), "heartbeats: missing"),
            (r#"{"heartbeats": {}}"#.to_string(), "heartbeats: expected an array"),
            (r#"{"heartbeats": [1]}"#.to_string(), "heartbeats[0]: expected an object"),
            (
                format!(r#"{{"heartbeats": [{{{ok}}}, {{"browser": 5, "host": null, "time": "2026-11-24T10:00:05Z"}}]}}"#),
                "heartbeats[1].browser: expected a string, got a number",
            ),
            (
                r#"{"heartbeats": [{"browser": "", "host": null, "time": "2026-11-24T10:00:05Z"}]}"#.to_string(),
                "heartbeats[0].browser: must be 1 to 64 characters",
            ),
            (
                r#"{"heartbeats": [{"browser": "Zen", "time": "2026-11-24T10:00:05Z"}]}"#.to_string(),
                "heartbeats[0].host: missing",
            ),
            (
                r#"{"heartbeats": [{"browser": "Zen", "host": "https://a.com/x?q", "time": "2026-11-24T10:00:05Z"}]}"#.to_string(),
                "heartbeats[0].host: \"https://a.com/x?q\" is not a host name",
            ),
            (
                r#"{"heartbeats": [{"browser": "Zen", "host": "a.com:443", "time": "2026-11-24T10:00:05Z"}]}"#.to_string(),
                "is not a host name",
            ),
            (
                r#"{"heartbeats": [{"browser": "Zen", "host": 7, "time": "2026-11-24T10:00:05Z"}]}"#.to_string(),
                "heartbeats[0].host: expected a host name string or null, got a number",
            ),
            (
                r#"{"heartbeats": [{"browser": "Zen", "host": null, "time": 1700000000}]}"#.to_string(),
                "heartbeats[0].time: expected an RFC 3339 time",
            ),
            (
                r#"{"heartbeats": [{"browser": "Zen", "host": null, "time": "yesterday"}]}"#.to_string(),
                "heartbeats[0].time: expected an RFC 3339 time such as \"2026-11-24T10:00:05.120Z\", got \"yesterday\"",
            ),
            (
                r#"{"heartbeats": [{"browser": "Zen", "host": null, "time": "2030-01-01T00:00:00Z"}]}"#.to_string(),
                "is in the future",
            ),
            (
                format!(r#"{{"heartbeats": [{{{ok}, "duration": "20"}}]}}"#),
                "heartbeats[0].duration: expected a number of seconds, got a string",
            ),
            (
                format!(r#"{{"heartbeats": [{{{ok}, "duration": -1}}]}}"#),
                "heartbeats[0].duration: -1 is out of range",
            ),
            (
                format!(r#"{{"heartbeats": [{{{ok}, "private": "no"}}]}}"#),
                "heartbeats[0].private: expected true or false, got a string",
            ),
        ] {
            let m = message(hb(&body));
            assert!(m.contains(needle), "{body}\n  gave: {m}\n  wanted: {needle}");
        }
    }

    #[test]
    fn batches_are_bounded() {
        let one = r#"{"browser": "Zen", "host": null, "time": "2026-11-24T10:00:05Z"}"#;
        let body = format!(r#"{{"heartbeats": [{}]}}"#, vec![one; 101].join(","));
        assert!(message(hb(&body)).contains("101 items is too many (at most 100"));
        let body = format!(r#"{{"heartbeats": [{}]}}"#, vec![one; 100].join(","));
        assert_eq!(hb(&body).expect("100 is fine").len(), 100);
    }

    #[test]
    fn hosts_may_be_address_literals() {
        for (host, stored) in [
            ("[2001:DB8::1]", "[2001:db8::1]"),
            ("192.0.2.1", "192.0.2.1"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("www.example.com.", "www.example.com"),
        ] {
            let v = hb(&format!(
                r#"{{"heartbeats": [{{"browser": "Zen", "host": "{host}", "time": "2026-11-24T10:00:05Z"}}]}}"#
            ))
            .expect(host);
            assert_eq!(v[0].host.as_deref(), Some(stored));
        }
        for bad in [
            "[2001:db8::1",
            "[nope]",
            "a..b",
            "a b",
            "user@a.com",
            "bücher.de",
        ] {
            let r = hb(&format!(
                r#"{{"heartbeats": [{{"browser": "Zen", "host": "{bad}", "time": "2026-11-24T10:00:05Z"}}]}}"#
            ));
            assert!(message(r).contains("is not a host name"), "{bad}");
        }
    }

    #[test]
    fn observations_need_a_plain_address() {
        let ok = observations(
            br#"{"observations": [{"browser": "Zen", "host": "a.com", "ip": "2001:db8::1", "time": "2026-11-24T10:00:05Z"}]}"#,
            NOW,
        )
        .expect("valid");
        assert_eq!(ok[0].ip, "2001:db8::1".parse::<IpAddr>().expect("ip"));
        for (ip, needle) in [
            (
                r#""[2001:db8::1]""#,
                "observations[0].ip: \"[2001:db8::1]\" is not an IPv4 or IPv6 address",
            ),
            (r#""192.0.2.1:443""#, "is not an IPv4 or IPv6 address"),
            (
                "17",
                "observations[0].ip: expected an address string, got a number",
            ),
        ] {
            let e = observations(
                format!(r#"{{"observations": [{{"browser": "Zen", "host": "a.com", "ip": {ip}, "time": "2026-11-24T10:00:05Z"}}]}}"#).as_bytes(),
                NOW,
            )
            .expect_err(ip);
            assert!(e.message.contains(needle), "{}", e.message);
        }
        let e = observations(
            br#"{"observations": [{"browser": "Zen", "host": null, "ip": "192.0.2.1", "time": "2026-11-24T10:00:05Z"}]}"#,
            NOW,
        )
        .expect_err("null host");
        assert!(e.message.contains("observations[0].host: missing"));
    }

    #[test]
    fn error_bodies_are_the_protocols_json() {
        let e = ApiError::new(401, "unauthorized", "say \"hi\"");
        let v: Value = serde_json::from_str(&e.body()).expect("json");
        assert_eq!(v["error"], "unauthorized");
        assert_eq!(v["message"], "say \"hi\"");
    }

    proptest::proptest! {
        #[test]
        fn no_body_makes_the_parser_panic(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = heartbeats(&body, NOW);
            let _ = observations(&body, NOW);
        }
    }
}
