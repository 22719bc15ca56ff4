//! One HTTP/1.1 exchange per connection, parsed by `httparse` (hyper's parser) under hard
//! limits: the head at most [`MAX_HEAD`] bytes, the body at most the caller's limit and
//! framed by `Content-Length` only. Then one response with `Connection: close`.
//!
//! Pure functions over the bytes received so far ([`parse_head`], [`check_body`]): the
//! connection loop (`reactor`) reads without blocking and calls them as bytes arrive, and the
//! randomised run (`benches/parsers.rs`) feeds them arbitrary bytes.
//!
//! Why not a server crate: tiny_http 0.12 (the small synchronous server) stops accepting
//! connections for good after any error from `accept` (its accept thread `break`s), and the
//! only way to give its client sockets a read timeout is a timeout on the listening socket,
//! which makes `accept` fail after every idle interval; it also has no limit on the size of a
//! request head, no deadline for a whole request, and it reads a refused body to its end. The
//! extension sends one small JSON request every few seconds, so one request per connection
//! costs nothing and keeps this small.

use std::time::Duration;

use super::api::ApiError;

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers in a request.
const MAX_HEADERS: usize = 32;

/// A request as the handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (path and query).
    pub target: String,
    /// Header names lower-cased; values as sent (invalid UTF-8 is refused).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The value of a header sent once; a header sent twice is refused (which would count?).
    pub fn header(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "the {name} header was sent more than once"
            )));
        }
        Ok(first)
    }
}

/// The head of a request, before its body is read: enough to refuse it early.
#[derive(Debug)]
pub struct Head {
    pub request: Request,
    pub content_length: usize,
    pub expect_continue: bool,
    /// Body bytes received so far (first those that arrived with the head).
    pub already: Vec<u8>,
}

/// Parse the request head in `buf` (everything received so far): `Ok(None)` while it is
/// incomplete; a refusal for a head that is too large or not HTTP/1.1.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Err(head_too_large()),
        Ok(httparse::Status::Complete(len)) => {
            let request = Request {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("").to_string(),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        std::str::from_utf8(h.value)
                            .map(|v| (h.name.to_ascii_lowercase(), v.trim().to_string()))
                            .map_err(|_| {
                                ApiError::bad_request(format!("the {} header is not UTF-8", h.name))
                            })
                    })
                    .collect::<Result<_, _>>()?,
                body: Vec::new(),
            };
            finish_head(request, buf[len..].to_vec()).map(Some)
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => Err(head_too_large()),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(ApiError::new(
            431,
            "header_too_large",
            format!("more than {MAX_HEADERS} headers; send only the ones the protocol needs"),
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "not an HTTP/1.1 request ({e})"
        ))),
    }
}

fn head_too_large() -> ApiError {
    ApiError::new(
        431,
        "header_too_large",
        format!(
            "the request line and headers are larger than {} KiB",
            MAX_HEAD / 1024
        ),
    )
}

fn finish_head(request: Request, already: Vec<u8>) -> Result<Head, ApiError> {
    if request.header("transfer-encoding")?.is_some() {
        return Err(ApiError::new(
            411,
            "length_required",
            "send the body with a Content-Length, not chunked",
        ));
    }
    let content_length = match request.header("content-length")? {
        None => 0,
        Some(v) if !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse::<usize>().unwrap_or(usize::MAX)
        }
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "Content-Length {:?} is not a number of bytes",
                v.chars().take(40).collect::<String>()
            )));
        }
    };
    let expect_continue = match request.header("expect")? {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
        Some(_) => {
            return Err(ApiError::new(
                417,
                "expectation_failed",
                "the only Expect this server knows is 100-continue",
            ));
        }
    };
    Ok(Head {
        request,
        content_length,
        expect_continue,
        already,
    })
}

/// Check the body `head` announces against `limit`, and the bytes that came with the head
/// against what it announced (one request per connection: no more may follow).
pub fn check_body(head: &Head, limit: usize) -> Result<(), ApiError> {
    if head.content_length > limit {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!(
                "the body is larger than {} KiB; send fewer reports per request",
                limit / 1024
            ),
        ));
    }
    if head.already.len() > head.content_length {
        return Err(ApiError::bad_request(
            "more bytes came than the Content-Length announced (one request per connection)",
        ));
    }
    Ok(())
}

impl Head {
    /// The request with its body, once all of it has come.
    pub fn complete(self) -> Option<Request> {
        (self.already.len() >= self.content_length).then(|| {
            let mut r = self.request;
            r.body = self.already;
            r
        })
    }

    /// Take more body bytes; a refusal when they overrun the Content-Length.
    pub fn push_body(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        if self.already.len() + bytes.len() > self.content_length {
            return Err(ApiError::bad_request(
                "more bytes came than the Content-Length announced (one request per connection)",
            ));
        }
        self.already.extend_from_slice(bytes);
        Ok(())
    }

    /// Body bytes still to come.
    pub fn missing(&self) -> usize {
        self.content_length.saturating_sub(self.already.len())
    }
}

/// The refusal of a request that did not arrive whole in time.
pub fn timeout_error(timeout: Duration) -> ApiError {
    ApiError::new(
        408,
        "request_timeout",
        format!(
            "the request did not arrive whole within {}; send it in one go",
            humantime::format_duration(timeout)
        ),
    )
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A response: a JSON body (or none), with extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// Sent with a non-empty body.
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    pub fn json(status: u16, body: String) -> Self {
        Self::with_type(status, "application/json", body)
    }

    /// A body of another type (`/metrics`' exposition formats).
    pub fn with_type(status: u16, content_type: &'static str, body: String) -> Self {
        Response {
            status,
            body,
            content_type,
            headers: Vec::new(),
        }
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        if !self.body.is_empty() {
            head.push_str(&format!("Content-Type: {}\r\n", self.content_type));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.body.len()
        ));
        for (k, v) in &self.headers {
            // Values are ours (or an Origin header we checked): no line breaks get through.
            if !v.contains(['\r', '\n']) {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `raw` in pieces of `step` bytes, as a connection would, then check the body.
    fn read_in(raw: &[u8], limit: usize, step: usize) -> Result<Request, ApiError> {
        let mut buf = Vec::new();
        let mut rest = raw;
        let mut head = loop {
            let n = step.min(rest.len());
            buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if let Some(h) = parse_head(&buf)? {
                break h;
            }
            if rest.is_empty() {
                return Err(ApiError::bad_request("incomplete head"));
            }
        };
        check_body(&head, limit)?;
        while !rest.is_empty() {
            let n = step.min(rest.len());
            head.push_body(&rest[..n])?;
            rest = &rest[n..];
        }
        head.complete()
            .ok_or_else(|| ApiError::bad_request("the body ended before its Content-Length"))
    }

    fn read(raw: &[u8], limit: usize) -> Result<Request, ApiError> {
        let whole = read_in(raw, limit, raw.len().max(1));
        for step in [1, 7] {
            assert_eq!(read_in(raw, limit, step), whole, "in pieces of {step}");
        }
        whole
    }

    #[test]
    fn a_request_is_parsed_with_its_body() {
        let r = read(
            b"POST /v1/heartbeats?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nX-A:  b \r\n\r\nbody",
            64,
        )
        .expect("ok");
        assert_eq!(r.method, "POST");
        assert_eq!(r.target, "/v1/heartbeats?x=1");
        assert_eq!(r.header("host").expect("once"), Some("127.0.0.1"));
        assert_eq!(r.header("x-a").expect("once"), Some("b"));
        assert_eq!(r.body, b"body");
    }

    #[test]
    fn framing_errors_are_refused_with_their_status() {
        for (raw, status, code) in [
            (
                &b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n"[..],
                413,
                "payload_too_large",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                411,
                "length_required",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                400,
                "bad_request",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
                400,
                "bad_request",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
                400,
                "bad_request",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nabc",
                400,
                "bad_request",
            ),
            (
                b"POST / HTTP/1.1\r\nExpect: magic\r\n\r\n",
                417,
                "expectation_failed",
            ),
            (b"GET / HTTP/1.1\r\nX: \xff\r\n\r\n", 400, "bad_request"),
            (
                b"\x16\x03\x01\x02\x00 TLS hello\r\n\r\n",
                400,
                "bad_request",
            ),
        ] {
            let e = read(raw, 64).expect_err("refused");
            assert_eq!(
                (e.status, e.code),
                (status, code),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let e = read(&big, 64).expect_err("too large");
        assert_eq!((e.status, e.code), (431, "header_too_large"));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            many.extend(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(read(&many, 64).expect_err("many").status, 431);
    }

    #[test]
    fn expect_100_continue_is_noted_and_the_timeout_names_its_length() {
        let h = parse_head(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .expect("head")
            .expect("complete");
        assert!(h.expect_continue);
        assert_eq!(h.missing(), 2);
        let e = timeout_error(Duration::from_secs(5));
        assert_eq!((e.status, e.code), (408, "request_timeout"));
        assert!(e.message.contains("5s"), "{}", e.message);
    }

    #[test]
    fn responses_close_and_never_carry_a_line_break_from_a_value() {
        let r = Response::json(401, "{}".into())
            .with("WWW-Authenticate", "Bearer")
            .with("X-Bad", "a\r\nSet-Cookie: x");
        let text = String::from_utf8(r.to_bytes()).expect("utf8");
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("Connection: close\r\n"));
        assert!(text.contains("WWW-Authenticate: Bearer\r\n"));
        assert!(!text.contains("Set-Cookie"));
        assert!(text.ends_with("\r\n\r\n{}"));
    }
}
