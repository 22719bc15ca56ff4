//! `netmon serve` end to end over loopback TCP: every endpoint, and every refusal the
//! protocol names (extension/PROTOCOL.md), each answered with its status and JSON error while
//! a concurrent valid client keeps being served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::{Env, Serve, http, http_raw, parse_reply, serve_token, wait_until};

fn now_rfc3339(offset_s: i64) -> String {
    at_rfc3339(chrono::Utc::now(), offset_s)
}

/// Times that must be an exact distance apart come from one reading of the clock: two
/// readings can straddle a millisecond boundary (seen in CI: 10,001 ms for 10 s).
fn at_rfc3339(base: chrono::DateTime<chrono::Utc>, offset_s: i64) -> String {
    (base + chrono::Duration::seconds(offset_s))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn heartbeat_body(host: &str) -> String {
    format!(
        r#"{{"heartbeats": [{{"browser": "Firefox", "host": "{host}", "time": "{}", "duration": 5}}]}}"#,
        now_rfc3339(-10)
    )
}

#[test]
fn the_endpoints_store_what_the_extension_reports() {
    let env = Env::new();
    let serve = Serve::start(&env, &[]);
    let token = serve_token(&env);

    let r = http(serve.addr, "GET", "/v1/status", Some(&token), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["ok"], true);
    assert_eq!(v["protocol"], 1);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["recorder"]["running"], false);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );

    let base = chrono::Utc::now();
    let t0 = at_rfc3339(base, -30);
    let t1 = at_rfc3339(base, -20);
    let body = format!(
        r#"{{"heartbeats": [
            {{"browser": "Firefox", "host": "www.bbc.co.uk", "time": "{t0}", "duration": 5}},
            {{"browser": "Firefox", "host": "www.bbc.co.uk", "time": "{t0}", "duration": 10}},
            {{"browser": "Firefox", "host": null, "time": "{t1}"}}
        ]}}"#
    );
    let r = http(serve.addr, "POST", "/v1/heartbeats", Some(&token), &body);
    assert_eq!(
        (r.status, r.json()["accepted"].as_i64()),
        (200, Some(3)),
        "{}",
        r.body
    );
    // Two heartbeats of one stay are one interval; the null host is the no-tab interval.
    assert_eq!(
        env.one("SELECT count(*) FROM web_activity WHERE host = 'www.bbc.co.uk'"),
        1
    );
    assert_eq!(
        env.one("SELECT end_at - start_at FROM web_activity WHERE host = 'www.bbc.co.uk'"),
        10_000,
        "the stay lasted until the no-tab heartbeat, 10 s after it started"
    );
    assert_eq!(
        env.one("SELECT heartbeats FROM web_activity WHERE host = 'www.bbc.co.uk'"),
        2
    );
    assert_eq!(
        env.one("SELECT count(*) FROM web_activity WHERE host = ''"),
        1
    );

    let body = format!(
        r#"{{"observations": [
            {{"browser": "Firefox", "host": "www.bbc.co.uk", "ip": "151.101.0.81", "time": "{t0}"}},
            {{"browser": "Firefox", "host": "www.bbc.co.uk", "ip": "2a04:4e42::81", "time": "{t1}"}}
        ]}}"#
    );
    let r = http(serve.addr, "POST", "/v1/observations", Some(&token), &body);
    assert_eq!(
        (r.status, r.json()["accepted"].as_i64()),
        (200, Some(2)),
        "{}",
        r.body
    );
    assert_eq!(
        env.one("SELECT count(*) FROM web_addresses WHERE host = 'www.bbc.co.uk'"),
        2
    );
    assert_eq!(
        env.one("SELECT count(*) FROM web_browsers WHERE name = 'Firefox'"),
        1
    );

    let stderr = serve.stop();
    assert!(!stderr.contains(&token), "the token was logged: {stderr}");
}

#[test]
fn the_token_is_private_stable_and_printed_on_request() {
    let env = Env::new();
    let token = serve_token(&env);
    assert_eq!(token.len(), 64);
    assert_eq!(serve_token(&env), token, "the same token every time");
    let path = env.dir.path().join("netmon.db.token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&path).expect("token file").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let serve = Serve::start(&env, &[]);
    let r = http(serve.addr, "GET", "/v1/status", Some(&token), "");
    assert_eq!(r.status, 200);
    let stderr = serve.stop();
    assert!(stderr.contains("--print-token"), "{stderr}");
    assert!(!stderr.contains(&token), "{stderr}");
}

/// A valid client that keeps posting heartbeats and reading status until told to stop.
struct Steady {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failures: Arc<std::sync::Mutex<Vec<String>>>,
    handle: std::thread::JoinHandle<()>,
}

impl Steady {
    fn start(addr: SocketAddr, token: String) -> Steady {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, o, f) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failures));
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut n = 0u64;
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                n += 1;
                let r = if n.is_multiple_of(2) {
                    http(addr, "GET", "/v1/status", Some(&token), "")
                } else {
                    http(
                        addr,
                        "POST",
                        "/v1/heartbeats",
                        Some(&token),
                        &heartbeat_body("steady.example"),
                    )
                };
                if r.status == 200 {
                    o.fetch_add(1, Ordering::SeqCst);
                } else {
                    f.lock()
                        .expect("lock")
                        .push(format!("{} {}", r.status, r.body));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Steady {
            stop,
            ok,
            failures,
            handle,
        }
    }

    fn served(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("steady client");
        let failures = self.failures.lock().expect("lock");
        assert!(
            failures.is_empty(),
            "the valid client was refused: {failures:?}"
        );
        self.ok.load(Ordering::SeqCst)
    }
}

fn expect_refusal(r: &crate::util::HttpReply, status: u16, code: &str, needle: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"], code, "{}", r.body);
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

#[test]
fn every_refusal_is_a_json_4xx_while_a_valid_client_keeps_being_served() {
    let env = Env::new();
    let serve = Serve::start(&env, &["--client-timeout", "1s"]);
    let token = serve_token(&env);
    let addr = serve.addr;
    let steady = Steady::start(addr, token.clone());
    assert!(
        wait_until(Duration::from_secs(20), || steady.served() >= 2),
        "the valid client got nothing through"
    );
    let port = addr.port();
    let hb = heartbeat_body("a.example");

    // Missing and wrong tokens.
    let r = http(addr, "POST", "/v1/heartbeats", None, &hb);
    expect_refusal(&r, 401, "unauthorized", "missing access token");
    assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
    let r = http(
        addr,
        "GET",
        "/v1/status",
        Some("0123456789abcdef0123456789abcdef"),
        "",
    );
    expect_refusal(&r, 401, "unauthorized", "wrong access token");

    // DNS rebinding: a page whose name now resolves to 127.0.0.1 still sends its own name.
    let r = http_raw(
        addr,
        format!(
            "GET /v1/status HTTP/1.1\r\nHost: evil.example:{port}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    expect_refusal(&r, 403, "forbidden_host", "evil.example");

    // A web page's Origin, even with the right token and Host.
    let r = http_raw(
        addr,
        format!(
            "POST /v1/heartbeats HTTP/1.1\r\nHost: localhost:{port}\r\nOrigin: https://evil.example\r\n\
             Authorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{hb}",
            hb.len()
        )
        .as_bytes(),
    );
    expect_refusal(&r, 403, "forbidden_origin", "https://evil.example");

    // An extension's Origin is welcome, and told so in CORS terms.
    let ext = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";
    let r = http_raw(
        addr,
        format!(
            "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {ext}\r\n\
             Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(ext)
    );
    let r = http_raw(
        addr,
        format!(
            "OPTIONS /v1/heartbeats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: {ext}\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.head);
    assert!(
        r.header("access-control-allow-headers")
            .is_some_and(|h| h.contains("Authorization")),
        "{}",
        r.head
    );

    // Oversize body: refused from its Content-Length, before it is read.
    let big = format!(
        r#"{{"heartbeats": [], "pad": "{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let r = http(addr, "POST", "/v1/heartbeats", Some(&token), &big);
    expect_refusal(&r, 413, "payload_too_large", "64 KiB");
    // A body must come with its length: chunked uploads are refused before any is read.
    let chunked = format!(
        "POST /v1/observations HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n1000\r\n{}\r\n0\r\n\r\n",
        "y".repeat(4096)
    );
    let r = http_raw(addr, chunked.as_bytes());
    expect_refusal(&r, 411, "length_required", "Content-Length");
    // A head past 8 KiB.
    let r = http_raw(
        addr,
        format!(
            "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: {}\r\n\r\n",
            "p".repeat(9000)
        )
        .as_bytes(),
    );
    expect_refusal(&r, 431, "header_too_large", "8 KiB");

    // Malformed JSON, wrong types, a wrong value.
    let r = http(
        addr,
        "POST",
        "/v1/heartbeats",
        Some(&token),
        "{\"heartbeats\": [",
    );
    expect_refusal(&r, 400, "bad_request", "not valid JSON");
    let r = http(
        addr,
        "POST",
        "/v1/heartbeats",
        Some(&token),
        r#"{"heartbeats": [{"browser": "Firefox", "host": 42, "time": "2026-01-01T00:00:00Z"}]}"#,
    );
    expect_refusal(
        &r,
        400,
        "bad_request",
        "heartbeats[0].host: expected a host name string or null, got a number",
    );
    let r = http(
        addr,
        "POST",
        "/v1/observations",
        Some(&token),
        r#"{"observations": [{"browser": "Firefox", "host": "a.example", "ip": "a.example", "time": "2026-01-01T00:00:00Z"}]}"#,
    );
    expect_refusal(&r, 400, "bad_request", "observations[0].ip");
    let r = http(
        addr,
        "POST",
        "/v1/heartbeats",
        Some(&token),
        r#"{"heartbeats": "many"}"#,
    );
    expect_refusal(
        &r,
        400,
        "bad_request",
        "heartbeats: expected an array, got a string",
    );

    // Unknown endpoint, wrong method.
    let r = http(addr, "GET", "/v2/status", Some(&token), "");
    expect_refusal(&r, 404, "not_found", "/v2/status");
    let r = http(addr, "GET", "/v1/heartbeats", Some(&token), "");
    expect_refusal(&r, 405, "method_not_allowed", "POST");
    assert_eq!(r.header("allow").as_deref(), Some("POST"));

    // A slow client: headers, then half its body, then nothing. It gets 408 after the
    // client timeout (1 s here), and the valid client is served meanwhile.
    let body = format!(r#"{{"heartbeats": [], "pad": "{}"}}"#, "z".repeat(4000));
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    write!(
        slow,
        "POST /v1/heartbeats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..body.len() / 2]
    )
    .expect("send half");
    let served_before = steady.served();
    let started = Instant::now();
    let mut out = Vec::new();
    slow.read_to_end(&mut out).expect("read 408");
    let waited = started.elapsed();
    let r = parse_reply(&out);
    expect_refusal(&r, 408, "request_timeout", "did not arrive whole within 1s");
    assert!(
        waited >= Duration::from_millis(900),
        "refused after {waited:?}, before the timeout"
    );
    assert!(
        steady.served() > served_before,
        "the valid client was not served while the slow one stalled"
    );

    // A client that never finishes its head gets 408 after the timeout, too.
    let mut stalled = TcpStream::connect(addr).expect("connect");
    stalled
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stalled
        .write_all(b"POST /v1/heartbeats HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("send part of the head");
    let started = Instant::now();
    let mut out = Vec::new();
    stalled.read_to_end(&mut out).expect("read 408");
    let waited = started.elapsed();
    expect_refusal(&parse_reply(&out), 408, "request_timeout", "1s");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(15),
        "a silent client was answered after {waited:?}"
    );
    // One that connects and says nothing is closed without an answer.
    let mut silent = TcpStream::connect(addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut out = Vec::new();
    silent.read_to_end(&mut out).expect("closed");
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));

    let served = steady.finish();
    assert!(served >= 4, "the valid client was served {served} times");
    // Every valid heartbeat was stored (and merged: one stay, one interval).
    assert_eq!(
        env.one("SELECT count(*) FROM web_activity WHERE host = 'steady.example'"),
        1
    );
    assert_eq!(
        env.one("SELECT count(*) FROM web_activity WHERE host = 'a.example'"),
        0
    );
    let stderr = serve.stop();
    assert!(!stderr.contains(&token), "the token was logged: {stderr}");
    assert!(
        stderr.contains("forbidden_origin"),
        "refusals are logged: {stderr}"
    );
}

#[test]
fn a_non_loopback_address_needs_allow_remote_and_is_warned_about() {
    let env = Env::new();
    env.netmon()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("--allow-remote"));
    assert!(!env.db.exists(), "nothing was created for a refused start");
    let serve = Serve::start(&env, &["--listen", "0.0.0.0:0", "--allow-remote"]);
    assert!(serve.stderr().contains("WARNING"), "{}", serve.stderr());
    // Loopback Host still works when bound to every address.
    let token = serve_token(&env);
    let local: SocketAddr = format!("127.0.0.1:{}", serve.addr.port())
        .parse()
        .expect("addr");
    assert_eq!(
        http(local, "GET", "/v1/status", Some(&token), "").status,
        200
    );
    serve.stop();
}

#[test]
fn a_port_in_use_is_a_user_error_that_says_what_to_do() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    env.netmon()
        .args(["serve", "--listen", &addr])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("already in use"));
}

#[test]
fn status_says_when_a_recorder_runs_beside_it() {
    let env = Env::new();
    env.step(
        1,
        "csv",
        ",interface,state,bytes_in,bytes_out,\ncurl.5000002,,,1,1,\n",
    );
    let serve = Serve::start(&env, &[]);
    let token = serve_token(&env);
    let mut rec = env.spawn_record(&["--source", "nettop", "--interval", "100ms"]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let r = http(serve.addr, "GET", "/v1/status", Some(&token), "");
            // Running as soon as the lock is taken; the source once its run row is written.
            r.status == 200
                && r.json()["recorder"]["running"] == true
                && !r.json()["recorder"]["source"].is_null()
        }),
        "status never saw the recorder"
    );
    let r = http(serve.addr, "GET", "/v1/status", Some(&token), "");
    assert_eq!(r.json()["recorder"]["source"], "nettop");
    // Both write the same database at once.
    let r = http(
        serve.addr,
        "POST",
        "/v1/heartbeats",
        Some(&token),
        &heartbeat_body("b.example"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    crate::util::signal(&rec, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while rec.try_wait().expect("wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = rec.kill();
    let _ = rec.wait();
    serve.stop();
}

/// Issue 13: clients that send their headers and then nothing of their bodies used to hold
/// one of 32 request threads each until the client timeout, and everyone else got 503. They
/// now hold nothing a valid client needs: it is served at once, and they get their 408s.
#[test]
fn stalled_clients_hold_no_worker_a_valid_client_is_served_and_they_get_408() {
    let env = Env::new();
    let serve = Serve::start(&env, &["--client-timeout", "3s"]);
    let token = serve_token(&env);
    let port = serve.addr.port();
    let stalled: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(serve.addr).expect("connect");
            write!(
                s,
                "POST /v1/heartbeats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 2000\r\nConnection: close\r\n\r\n"
            )
            .expect("send head");
            s
        })
        .collect();
    let status = format!(
        "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    for _ in 0..20 {
        let r = crate::util::try_http_raw(serve.addr, status.as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {}", serve.stderr()));
        assert_eq!(r.status, 200, "{}: {}", r.body, serve.stderr());
    }
    for mut s in stalled {
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut out = Vec::new();
        s.read_to_end(&mut out).expect("read");
        expect_refusal(&parse_reply(&out), 408, "request_timeout", "3s");
    }
    serve.stop();
}

/// Regression: an HTTP server whose listening socket carried the client timeout stopped
/// accepting for good after the first idle spell that long (tiny_http 0.12 ends its accept
/// loop on any accept error). Idle time is the scenario here, not a wait for an outcome.
#[test]
fn the_server_keeps_accepting_after_idling_longer_than_the_client_timeout() {
    let env = Env::new();
    let serve = Serve::start(&env, &["--client-timeout", "500ms"]);
    let token = serve_token(&env);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        let r = crate::util::try_http_raw(
            serve.addr,
            format!(
                "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}: {}", serve.stderr()));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    serve.stop();
}
