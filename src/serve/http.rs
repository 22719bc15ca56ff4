//! One HTTP/1.1 exchange per connection, parsed by `httparse` (hyper's parser) under hard
//! limits: the head at most [`MAX_HEAD`] bytes, the body at most the caller's limit and
//! framed by `Content-Length` only, and the whole request within one deadline from the
//! moment the connection was accepted. Then one response with `Connection: close`.
//!
//! Why not a server crate: tiny_http 0.12 (the small synchronous server) stops accepting
//! connections for good after any error from `accept` (its accept thread `break`s), and the
//! only way to give its client sockets a read timeout is a timeout on the listening socket,
//! which makes `accept` fail after every idle interval; it also has no limit on the size of a
//! request head, no deadline for a whole request, and it reads a refused body to its end. The
//! extension sends one small JSON request every few seconds, so one request per connection
//! costs nothing and keeps this small.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

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
    content_length: usize,
    expect_continue: bool,
    /// Body bytes that arrived with the head.
    already: Vec<u8>,
}

/// Why a request could not be read. `Gone` means there is nobody to answer.
#[derive(Debug)]
pub enum ReadError {
    /// The client closed or reset the connection, or sent nothing at all before the deadline.
    Gone,
    /// A refusal to send back.
    Refuse(ApiError),
}

impl From<ApiError> for ReadError {
    fn from(e: ApiError) -> Self {
        ReadError::Refuse(e)
    }
}

fn timeout_error(timeout: Duration) -> ApiError {
    ApiError::new(
        408,
        "request_timeout",
        format!(
            "the request did not arrive whole within {}; send it in one go",
            humantime::format_duration(timeout)
        ),
    )
}

/// Read from `stream` until `deadline`; `Ok(0)` at end of stream.
fn read_some(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> std::io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Err(ErrorKind::TimedOut.into()),
            other => return other,
        }
    }
}

/// Read and parse a request head, within `timeout` of `started`.
pub fn read_head(
    stream: &mut TcpStream,
    started: Instant,
    timeout: Duration,
) -> Result<Head, ReadError> {
    let deadline = started + timeout;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        match read_some(stream, &mut chunk, deadline) {
            Ok(0) => return Err(ReadError::Gone),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                // A connection that never said anything is not worth an answer.
                return Err(if buf.is_empty() {
                    ReadError::Gone
                } else {
                    ReadError::Refuse(timeout_error(timeout))
                });
            }
            Err(_) => return Err(ReadError::Gone),
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
                return Err(head_too_large().into());
            }
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
                                    ApiError::bad_request(format!(
                                        "the {} header is not UTF-8",
                                        h.name
                                    ))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                    body: Vec::new(),
                };
                return finish_head(request, buf.split_off(len));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err(head_too_large().into());
                }
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ApiError::new(
                    431,
                    "header_too_large",
                    format!(
                        "more than {MAX_HEADERS} headers; send only the ones the protocol needs"
                    ),
                )
                .into());
            }
            Err(e) => {
                return Err(ApiError::bad_request(format!("not an HTTP/1.1 request ({e})")).into());
            }
        }
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

fn finish_head(request: Request, already: Vec<u8>) -> Result<Head, ReadError> {
    if request.header("transfer-encoding")?.is_some() {
        return Err(ApiError::new(
            411,
            "length_required",
            "send the body with a Content-Length, not chunked",
        )
        .into());
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
            ))
            .into());
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
            )
            .into());
        }
    };
    Ok(Head {
        request,
        content_length,
        expect_continue,
        already,
    })
}

/// Read the body announced by `head`: at most `limit` bytes, by the same deadline.
pub fn read_body(
    stream: &mut TcpStream,
    mut head: Head,
    limit: usize,
    started: Instant,
    timeout: Duration,
) -> Result<Request, ReadError> {
    let len = head.content_length;
    if len > limit {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!(
                "the body is larger than {} KiB; send fewer reports per request",
                limit / 1024
            ),
        )
        .into());
    }
    if head.already.len() > len {
        return Err(ApiError::bad_request(
            "more bytes came than the Content-Length announced (one request per connection)",
        )
        .into());
    }
    if head.expect_continue && head.already.len() < len {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
    }
    let deadline = started + timeout;
    let mut body = std::mem::take(&mut head.already);
    body.reserve(len - body.len());
    let mut chunk = [0u8; 8192];
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        match read_some(stream, &mut chunk[..want], deadline) {
            Ok(0) => {
                return Err(
                    ApiError::bad_request("the body ended before its Content-Length").into(),
                );
            }
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                return Err(timeout_error(timeout).into());
            }
            Err(_) => return Err(ReadError::Gone),
        }
    }
    let mut request = head.request;
    request.body = body;
    Ok(request)
}

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

/// Send `response`, then close gracefully: stop sending, and read (and drop) what the client
/// is still sending for a moment, so that closing with unread data does not reset the
/// connection before the client has read the answer.
pub fn respond_and_close(stream: &mut TcpStream, response: &Response, write_timeout: Duration) {
    let _ = stream.set_write_timeout(Some(write_timeout));
    if stream.write_all(&response.to_bytes()).is_err() {
        return;
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 8192];
    let mut drained = 0usize;
    while drained < 1024 * 1024 {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(250));
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
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
    use std::net::TcpListener;

    /// A connected pair: (client, server side).
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        (c, s)
    }

    fn read(raw: &[u8], limit: usize) -> Result<Request, ReadError> {
        let (mut c, mut s) = pair();
        c.write_all(raw).expect("send");
        c.shutdown(Shutdown::Write).expect("eof");
        let started = Instant::now();
        let t = Duration::from_secs(2);
        let head = read_head(&mut s, started, t)?;
        read_body(&mut s, head, limit, started, t)
    }

    fn refusal(r: Result<Request, ReadError>) -> ApiError {
        match r {
            Err(ReadError::Refuse(e)) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
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
            let e = refusal(read(raw, 64));
            assert_eq!(
                (e.status, e.code),
                (status, code),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        let e = refusal(read(&big, 64));
        assert_eq!((e.status, e.code), (431, "header_too_large"));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            many.extend(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend(b"\r\n");
        assert_eq!(refusal(read(&many, 64)).status, 431);
    }

    #[test]
    fn a_silent_client_is_gone_and_a_slow_one_gets_408() {
        let (_c, mut s) = pair();
        let started = Instant::now();
        let r = read_head(&mut s, started, Duration::from_millis(200));
        assert!(matches!(r, Err(ReadError::Gone)), "{r:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));

        let (mut c, mut s) = pair();
        c.write_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
            .expect("send");
        let started = Instant::now();
        let t = Duration::from_millis(300);
        let head = read_head(&mut s, started, t).expect("head");
        let e = refusal(read_body(&mut s, head, 64, started, t));
        assert_eq!((e.status, e.code), (408, "request_timeout"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn expect_100_continue_is_answered_before_the_body_is_read() {
        let (mut c, mut s) = pair();
        c.write_all(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .expect("send head");
        let started = Instant::now();
        let t = Duration::from_secs(2);
        let head = read_head(&mut s, started, t).expect("head");
        let server = std::thread::spawn(move || read_body(&mut s, head, 64, started, t));
        let mut interim = [0u8; 25];
        c.read_exact(&mut interim).expect("100");
        assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
        c.write_all(b"ok").expect("body");
        let r = server.join().expect("thread").expect("request");
        assert_eq!(r.body, b"ok");
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
