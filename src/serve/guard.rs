//! Who may talk to `netmon serve`: pure checks of a request's Host, Origin and token, and the
//! routing table. Each refusal is an [`ApiError`] with the protocol's code.
//!
//! - Host must name a loopback host (`localhost`, `127.0.0.1`, `[::1]`, with or without a
//!   port), or the address the server was explicitly bound to. A web page that rebinds its
//!   own DNS name to 127.0.0.1 still sends its own name, and is refused.
//! - Origin must be absent (curl, scripts) or a browser extension's
//!   (`chrome-extension://…`, `moz-extension://…`, `safari-web-extension://…`). Web pages always
//!   send theirs, and are refused before the token is even looked at.
//! - The token must come as `Authorization: Bearer <token>`: the extension's on the ingest
//!   endpoints and `/v1/status`, the read-only metrics token on `/metrics`.

use std::net::IpAddr;

use super::api::ApiError;
use super::token::Token;

/// Schemes of browser-extension origins.
const EXTENSION_SCHEMES: &[&str] = &["chrome-extension", "moz-extension", "safari-web-extension"];

/// The endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Status,
    Heartbeats,
    Observations,
    /// The Prometheus exposition (read-only, with its own token).
    Metrics,
}

/// Check the Host header. `bound` is the address the server listens on, accepted as a literal
/// when it is not a loopback address (a bind the user asked for explicitly).
pub fn host(value: Option<&str>, bound: IpAddr) -> Result<(), ApiError> {
    let forbidden = |why: String| ApiError::new(403, "forbidden_host", why);
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err(forbidden(
            "the Host header is missing; send Host: 127.0.0.1 (or localhost)".into(),
        ));
    };
    let name = strip_port(value).ok_or_else(|| {
        forbidden(format!(
            "Host {:?} is not a host name with an optional port",
            crate::text::excerpt(value, 80)
        ))
    })?;
    let name = name.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    let ok = match literal.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback() || ip == bound,
        Err(_) => name == "localhost",
    };
    if ok {
        Ok(())
    } else {
        Err(forbidden(format!(
            "Host {:?} is not this machine's loopback name: netmon serve only answers requests \
             addressed to 127.0.0.1, [::1] or localhost (this refuses DNS rebinding); point the \
             extension at http://127.0.0.1:PORT",
            crate::text::excerpt(value, 80)
        )))
    }
}

/// `name[:port]` → name; `[v6][:port]` → `[v6]`. `None` when the port is not a number.
fn strip_port(value: &str) -> Option<&str> {
    if value.starts_with('[') {
        let end = value.find(']')?;
        let rest = &value[end + 1..];
        if rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port) {
            return Some(&value[..=end]);
        }
        return None;
    }
    match value.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => is_port(port).then_some(name),
        Some(_) => None, // a bare IPv6 address is not a valid Host
        None => Some(value),
    }
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Check the Origin header; returns the origin to echo in CORS headers, if any.
pub fn origin(value: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(value) = value.map(str::trim) else {
        return Ok(None);
    };
    let allowed = value.split_once("://").is_some_and(|(scheme, rest)| {
        EXTENSION_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
            && !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    });
    if allowed {
        Ok(Some(value.to_string()))
    } else {
        Err(ApiError::new(
            403,
            "forbidden_origin",
            format!(
                "Origin {:?} is not a browser extension: netmon serve only accepts requests \
                 from the netmon extension (or without an Origin, from local tools)",
                crate::text::excerpt(value, 80)
            ),
        ))
    }
}

/// Check `Authorization: Bearer <token>` against the extension's token.
pub fn token(value: Option<&str>, token: &Token) -> Result<(), ApiError> {
    bearer(
        value,
        token,
        "copy the token shown by `netmon serve --print-token` into the extension's options",
    )
}

/// Check `Authorization: Bearer <token>` against the read-only token of `/metrics`.
pub fn metrics_token(value: Option<&str>, token: &Token) -> Result<(), ApiError> {
    bearer(
        value,
        token,
        "put the token shown by `netmon serve --print-metrics-token` in the scrape \
         configuration (authorization: credentials_file)",
    )
}

fn bearer(value: Option<&str>, token: &Token, hint: &str) -> Result<(), ApiError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err(ApiError::new(
            401,
            "unauthorized",
            format!("missing access token (Authorization: Bearer <token>): {hint}"),
        ));
    };
    let given = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(t) if token.matches(t) => Ok(()),
        Some(_) => Err(ApiError::new(
            401,
            "unauthorized",
            format!("wrong access token: {hint} (it changes when its file is deleted)"),
        )),
        None => Err(ApiError::new(
            401,
            "unauthorized",
            format!("the Authorization header must be \"Bearer <token>\": {hint}"),
        )),
    }
}

/// The endpoint for a method and URL (query strings are ignored).
pub fn route(method: &str, url: &str) -> Result<Route, ApiError> {
    let path = path_of(url);
    let Some((route, allowed)) = lookup(path) else {
        return Err(ApiError::new(
            404,
            "not_found",
            format!(
                "no endpoint {:?}: the endpoints are GET /v1/status, POST /v1/heartbeats, \
                 POST /v1/observations and GET /metrics",
                crate::text::excerpt(path, 80)
            ),
        ));
    };
    if method == allowed {
        Ok(route)
    } else {
        Err(ApiError::new(
            405,
            "method_not_allowed",
            format!(
                "{path} takes {allowed}, not {}",
                crate::text::excerpt(method, 80)
            ),
        ))
    }
}

/// Whether a URL is `/metrics` (whatever the method): it takes the metrics token.
pub fn is_metrics(url: &str) -> bool {
    path_of(url) == "/metrics"
}

/// Which method a URL's endpoint takes (for the Allow header of a 405).
pub fn allowed_method(url: &str) -> Option<&'static str> {
    lookup(path_of(url)).map(|(_, m)| m)
}

fn path_of(url: &str) -> &str {
    let path = url.split(['?', '#']).next().unwrap_or("");
    if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    }
}

fn lookup(path: &str) -> Option<(Route, &'static str)> {
    match path {
        "/v1/status" => Some((Route::Status, "GET")),
        "/v1/heartbeats" => Some((Route::Heartbeats, "POST")),
        "/v1/observations" => Some((Route::Observations, "POST")),
        "/metrics" => Some((Route::Metrics, "GET")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn loopback_hosts_pass_with_or_without_a_port() {
        for h in [
            "127.0.0.1",
            "127.0.0.1:7500",
            "localhost",
            "LOCALHOST:7500",
            "localhost.",
            "[::1]",
            "[::1]:7500",
            "127.1.2.3:80",
        ] {
            assert_eq!(host(Some(h), LO), Ok(()), "{h}");
        }
    }

    #[test]
    fn rebinding_and_foreign_hosts_are_refused() {
        for h in [
            "evil.example",
            "evil.example:7500",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "192.168.1.5:7500",
            "::1",
            "[::1]x",
            "127.0.0.1:port",
            "",
        ] {
            let e = host(Some(h), LO).expect_err(h);
            assert_eq!((e.status, e.code), (403, "forbidden_host"), "{h}");
        }
        let e = host(None, LO).expect_err("missing");
        assert!(e.message.contains("missing"), "{}", e.message);
    }

    #[test]
    fn an_explicit_non_loopback_bind_accepts_its_own_address() {
        let bound: IpAddr = "192.168.1.5".parse().expect("ip");
        assert_eq!(host(Some("192.168.1.5:7500"), bound), Ok(()));
        assert!(host(Some("192.168.1.6:7500"), bound).is_err());
        assert!(host(Some("nas.local:7500"), bound).is_err());
    }

    #[test]
    fn only_extension_origins_pass() {
        assert_eq!(origin(None), Ok(None));
        for o in [
            "chrome-extension://abcdefghijklmnopabcdefghijklmnop",
            "moz-extension://2f7a3c1e-0b9d-4e1a-9c1f-5d2e7b8a9c0d",
            "safari-web-extension://5E3A1B2C-ABCD-4321-9876-0123456789AB",
        ] {
            assert_eq!(origin(Some(o)), Ok(Some(o.to_string())), "{o}");
        }
        for o in [
            "https://evil.example",
            "http://127.0.0.1:7500",
            "null",
            "chrome-extension://",
            "chrome-extension://abc/../x",
            "file://",
        ] {
            let e = origin(Some(o)).expect_err(o);
            assert_eq!((e.status, e.code), (403, "forbidden_origin"), "{o}");
        }
    }

    #[test]
    fn the_token_must_be_a_bearer_token_and_right() {
        let t = {
            let dir = tempfile::tempdir().expect("tempdir");
            super::super::token::load_or_create(&dir.path().join("n.db")).expect("token")
        };
        let good = format!("Bearer {}", t.reveal());
        assert_eq!(token(Some(&good), &t), Ok(()));
        assert_eq!(token(Some(&format!("bearer  {}", t.reveal())), &t), Ok(()));
        for (v, needle) in [
            (None, "missing access token"),
            (Some("Bearer nope"), "wrong access token"),
            (Some("Basic dXNlcjpwYXNz"), "must be \"Bearer <token>\""),
            (Some(t.reveal()), "must be \"Bearer <token>\""),
        ] {
            let e = token(v, &t).expect_err("refused");
            assert_eq!((e.status, e.code), (401, "unauthorized"));
            assert!(e.message.contains(needle), "{}", e.message);
            assert!(
                !e.message.contains(t.reveal()),
                "the token never appears in a message"
            );
        }
    }

    #[test]
    fn routes_methods_and_unknown_paths() {
        assert_eq!(route("GET", "/v1/status"), Ok(Route::Status));
        assert_eq!(route("GET", "/v1/status/?x=1"), Ok(Route::Status));
        assert_eq!(route("POST", "/v1/heartbeats"), Ok(Route::Heartbeats));
        assert_eq!(route("POST", "/v1/observations"), Ok(Route::Observations));
        assert_eq!(route("GET", "/metrics"), Ok(Route::Metrics));
        assert_eq!(route("GET", "/metrics?x=1"), Ok(Route::Metrics));
        assert_eq!(route("POST", "/metrics").map_err(|e| e.status), Err(405));
        let e = route("GET", "/v1/heartbeats").expect_err("405");
        assert_eq!((e.status, e.code), (405, "method_not_allowed"));
        assert_eq!(allowed_method("/v1/heartbeats"), Some("POST"));
        assert_eq!(allowed_method("/v1/status"), Some("GET"));
        let e = route("GET", "/").expect_err("404");
        assert_eq!((e.status, e.code), (404, "not_found"));
        assert_eq!(allowed_method("/nope"), None);
    }
}
