//! Pure parser for `nettop` CSV logging mode (`-L`), built against `shared/fixtures/nettop`.
//!
//! Facts it rests on (FORMAT.md in the fixtures folder, with its evidence labels):
//! - A header names the columns in nettop's own order whatever `-J` asked for, with one
//!   unnamed field for the process or connection identifier, and a trailing comma [V]. So
//!   columns are found by header name, never by position.
//! - Nothing is quoted. Names contain dots, spaces and parentheses, are cut to 15 characters and
//!   may end in a space [V]; a comma in a name was never seen but would add a field [I]. So
//!   the identifier is everything between the columns before it and the columns after it,
//!   counted from the right, and the pid is the integer after the *last* dot.
//! - Each process row is followed by its connection rows (without `-P`); a connection
//!   identifier is `proto local<->remote`, IPv6 endpoints use `.` before the port [V].
//! - The header repeats before every sample, with no end marker; a stream may start part-way
//!   through, end in the middle of a row, arrive with CRLF, or carry stray control characters
//!   before a header [V]/[Q].
//!
//! A line that does not fit is reported in [`Parsed::skipped`] with its number and an excerpt,
//! and the parse goes on: one bad line never costs the rest of a sample.

use std::borrow::Cow;
use std::fmt;

/// The result of parsing nettop output.
///
/// Text fields borrow from the parsed text (nettop's output is parsed every tick; a copy of
/// every field was most of the parser's time). Only a row whose identifier held a comma,
/// joined back together, owns its text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed<'a> {
    /// One block per header line, in order.
    pub blocks: Vec<Block<'a>>,
    /// Lines that could not be used, with why.
    pub skipped: Vec<Skipped>,
}

/// One sample: the rows under one header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Block<'a> {
    /// Line number (1-based) of the header.
    pub header_line: usize,
    pub processes: Vec<ProcessRow<'a>>,
}

/// A per-process row (`name.pid`), with the connection rows listed under it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow<'a> {
    pub name: Cow<'a, str>,
    pub pid: u32,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections: Vec<ConnectionRow<'a>>,
    pub line: usize,
}

/// A per-connection row (`proto local<->remote`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRow<'a> {
    /// As printed: `tcp4`, `udp6`, `quic4`, …
    pub proto: Cow<'a, str>,
    /// The identifier exactly as printed, used to tell connections apart.
    pub ident: Cow<'a, str>,
    pub local: Endpoint<'a>,
    pub remote: Endpoint<'a>,
    pub interface: Option<&'a str>,
    pub state: Option<&'a str>,
    /// Empty on listeners and unbound sockets.
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
    pub line: usize,
}

/// One end of a connection. `host` is `None` for the wildcard `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint<'a> {
    pub host: Option<Cow<'a, str>>,
    pub port: Option<u16>,
}

/// A line the parser could not use.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub line: usize,
    pub reason: &'static str,
    pub excerpt: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {:?}", self.line, self.reason, self.excerpt)
    }
}

/// Why no sample could be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no header line was found (first line: {first_line:?})")]
    NoHeader { first_line: String },
    #[error("the header {header:?} has no bytes_in and bytes_out columns")]
    MissingByteColumns { header: String },
}

/// Column positions of one header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    fields: usize,
    ident: usize,
    interface: Option<usize>,
    state: Option<usize>,
    bytes_in: usize,
    bytes_out: usize,
}

/// Longest excerpt of a bad line kept for the log.
const EXCERPT_CHARS: usize = 80;

/// Parse nettop `-L` output: any number of samples, any column set that includes
/// `bytes_in` and `bytes_out`.
pub fn parse(text: &str) -> Result<Parsed<'_>, ParseError> {
    let mut parsed = Parsed::default();
    let mut header: Option<Header> = None;
    let mut unusable_header: Option<String> = None;
    let ends_with_newline = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.len().saturating_sub(1);
    let mut row_fields: Vec<&str> = Vec::new();
    // The last process row could not be read: connection rows until the next one are skipped.
    let mut owner_unread = false;

    for (idx, raw) in lines.iter().enumerate() {
        let number = idx + 1;
        let line = clean(raw);
        if line.is_empty() {
            continue;
        }
        if idx == last && !ends_with_newline {
            // The stream stopped in the middle of this line (nettop killed, pipe closed).
            skip(&mut parsed, number, "incomplete last line", line);
            continue;
        }
        if let Some(fields) = header_fields(line) {
            match Header::from_fields(&fields) {
                Some(h) => {
                    header = Some(h);
                    owner_unread = false;
                    parsed.blocks.push(Block {
                        header_line: number,
                        processes: Vec::new(),
                    });
                }
                None => {
                    header = None;
                    unusable_header.get_or_insert_with(|| line.to_string());
                    skip(&mut parsed, number, "header without byte columns", line);
                }
            }
            continue;
        }
        let Some(h) = &header else {
            skip(&mut parsed, number, "row before any usable header", line);
            continue;
        };
        match parse_row(h, line, number, &mut row_fields) {
            Ok(Row::Process(p)) => {
                owner_unread = false;
                if let Some(block) = parsed.blocks.last_mut() {
                    block.processes.push(p);
                }
            }
            Ok(Row::Connection(_)) if owner_unread => skip(
                &mut parsed,
                number,
                "connection row under a process row that could not be read",
                line,
            ),
            Ok(Row::Connection(c)) => {
                let owner = parsed
                    .blocks
                    .last_mut()
                    .and_then(|b| b.processes.last_mut());
                match owner {
                    Some(p) => p.connections.push(c),
                    None => skip(
                        &mut parsed,
                        number,
                        "connection row before any process",
                        line,
                    ),
                }
            }
            Err(reason) => {
                // A row that is not a connection was (or meant) a process row: the connection
                // rows under it are its own, not the previous process's, and cannot be
                // attributed until the next process row.
                if !line.contains("<->") {
                    owner_unread = true;
                }
                skip(&mut parsed, number, reason, line);
            }
        }
    }

    if parsed.blocks.is_empty() {
        return Err(match unusable_header {
            Some(header) => ParseError::MissingByteColumns { header },
            None => ParseError::NoHeader {
                first_line: crate::text::excerpt(
                    lines
                        .iter()
                        .map(|l| clean(l))
                        .find(|l| !l.is_empty())
                        .unwrap_or(""),
                    EXCERPT_CHARS,
                ),
            },
        });
    }
    Ok(parsed)
}

pub(super) enum Row<'a> {
    Process(ProcessRow<'a>),
    Connection(ConnectionRow<'a>),
}

/// Strip what a PTY or `script` adds around a line (CR at the end, control characters at the
/// start) and the padding of space-aligned output (blanks at either end: indented connection
/// rows).
pub(super) fn clean(raw: &str) -> &str {
    raw.trim_end_matches(['\r', '\n', ' ', '\t'])
        .trim_start_matches(|c: char| c.is_control() || c == ' ')
}

/// A field without the spaces that pad it in space-aligned output. Only blanks go: a process
/// name keeps everything between its first and last visible character, so a name cut to 15
/// characters that ends in a space (`Microsoft Edge .772`) is untouched, the space being inside.
fn unpad(field: &str) -> &str {
    field.trim_matches([' ', '\t'])
}

fn skip(parsed: &mut Parsed<'_>, line: usize, reason: &'static str, text: &str) {
    parsed.skipped.push(Skipped {
        line,
        reason,
        excerpt: crate::text::excerpt(text, EXCERPT_CHARS),
    });
}

/// A header is a line of column names (letters, digits, `_`, `-`) with exactly one empty
/// field (the identifier column) before the trailing empty field.
fn header_fields(line: &str) -> Option<Vec<&str>> {
    // Every data row is tested, so the test allocates nothing; only a header is split.
    if !is_header(line) {
        return None;
    }
    Some(line.split(',').map(unpad).collect())
}

fn is_header(line: &str) -> bool {
    let Some((names, trailing)) = line.rsplit_once(',') else {
        return false;
    };
    if !unpad(trailing).is_empty() {
        return false;
    }
    let (mut empties, mut named) = (0usize, 0usize);
    for f in names.split(',').map(unpad) {
        if f.is_empty() {
            empties += 1;
            if empties > 1 {
                return false;
            }
        } else if f.bytes().next().is_some_and(|c| c.is_ascii_alphabetic())
            && f.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            named += 1;
        } else {
            return false;
        }
    }
    empties == 1 && named >= 1
}

impl Header {
    /// The byte columns are the last two (either order), as in the header netmon's command
    /// makes nettop print: a row is then its identity (identifier, interface, state) followed
    /// by its counts, and the counts can be read from the end of the line.
    pub(super) fn counts_last(&self) -> Option<BytesOrder> {
        let last = self.fields.checked_sub(3)?;
        if self.ident >= last {
            return None;
        }
        match (self.bytes_in, self.bytes_out) {
            (i, o) if i == last && o == last + 1 => Some(BytesOrder::InOut),
            (i, o) if o == last && i == last + 1 => Some(BytesOrder::OutIn),
            _ => None,
        }
    }
}

/// Which byte column comes first at the end of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BytesOrder {
    InOut,
    OutIn,
}

/// A byte field as [`parse_row`] reads it (padding trimmed; empty is no value).
pub(super) fn count_field(field: &str) -> Result<Option<u64>, &'static str> {
    number_field(unpad(field))
}

/// A line that is a header: its columns, or `None` for a header without byte columns.
pub(super) fn header(line: &str) -> Option<Option<Header>> {
    header_fields(line).map(|f| Header::from_fields(&f))
}

impl Header {
    fn from_fields(fields: &[&str]) -> Option<Header> {
        let find = |name: &str| fields.iter().position(|f| *f == name);
        Some(Header {
            fields: fields.len(),
            ident: fields.iter().position(|f| f.is_empty())?,
            interface: find("interface"),
            state: find("state"),
            bytes_in: find("bytes_in")?,
            bytes_out: find("bytes_out")?,
        })
    }
}

/// `raw` is a buffer the caller reuses for the fields of every row.
pub(super) fn parse_row<'a>(
    h: &Header,
    line: &'a str,
    number: usize,
    raw: &mut Vec<&'a str>,
) -> Result<Row<'a>, &'static str> {
    raw.clear();
    raw.extend(line.split(','));
    if raw.last() != Some(&"") {
        return Err("row does not end with a comma");
    }
    if raw.len() < h.fields {
        return Err("row has fewer fields than its header");
    }
    // Extra fields can only come from commas inside the identifier: give them back to it,
    // counting the other columns from both ends.
    let extra = raw.len() - h.fields;
    let field = |col: usize| -> &'a str {
        if col < h.ident {
            unpad(raw[col])
        } else if col == h.ident {
            ""
        } else {
            unpad(raw[col + extra])
        }
    };
    let opt = |col: Option<usize>| -> Option<&'a str> { col.map(field).filter(|s| !s.is_empty()) };
    let bytes_in = number_field(field(h.bytes_in))?;
    let bytes_out = number_field(field(h.bytes_out))?;
    let (interface, state) = (opt(h.interface), opt(h.state));

    let row = if extra == 0 {
        ident_row(Cow::Borrowed(unpad(raw[h.ident])))
    } else {
        let joined = raw[h.ident..=h.ident + extra].join(",");
        ident_row(Cow::Owned(unpad(&joined).to_string()))
    };
    match row? {
        Ident::Process(name, pid) => Ok(Row::Process(ProcessRow {
            name,
            pid,
            // Process rows always carry numbers; an empty field is read as no traffic.
            bytes_in: bytes_in.unwrap_or(0),
            bytes_out: bytes_out.unwrap_or(0),
            connections: Vec::new(),
            line: number,
        })),
        Ident::Connection {
            ident,
            proto,
            local,
            remote,
        } => Ok(Row::Connection(ConnectionRow {
            proto,
            ident,
            local,
            remote,
            interface,
            state,
            bytes_in,
            bytes_out,
            line: number,
        })),
    }
}

/// What a row's identifier says.
enum Ident<'a> {
    Process(Cow<'a, str>, u32),
    Connection {
        ident: Cow<'a, str>,
        proto: Cow<'a, str>,
        local: Endpoint<'a>,
        remote: Endpoint<'a>,
    },
}

/// Read an identifier; parts of an owned one (joined from comma-split fields) are copied.
fn ident_row(ident: Cow<'_, str>) -> Result<Ident<'_>, &'static str> {
    match ident {
        Cow::Borrowed(text) => ident_parts(text),
        Cow::Owned(text) => Ok(match ident_parts(&text)? {
            Ident::Process(name, pid) => Ident::Process(Cow::Owned(name.into_owned()), pid),
            Ident::Connection {
                proto,
                local,
                remote,
                ..
            } => Ident::Connection {
                proto: Cow::Owned(proto.into_owned()),
                local: local.into_owned(),
                remote: remote.into_owned(),
                ident: Cow::Owned(text),
            },
        }),
    }
}

fn ident_parts(ident: &str) -> Result<Ident<'_>, &'static str> {
    if let Some((proto, local, remote)) = split_connection(ident) {
        return Ok(Ident::Connection {
            ident: Cow::Borrowed(ident),
            proto: Cow::Borrowed(proto),
            local,
            remote,
        });
    }
    // A connection row whose endpoints cannot be read is no process `NAME.PID`: read as one,
    // `tcp6 2001:db8::1.99999<->2001:db8::2.443` would be a process "…<->2001:db8::2" of pid
    // 443, and the real owner's connections after it would be counted under that.
    if ident.contains("<->") {
        return Err("connection row whose endpoints cannot be read");
    }
    let (name, pid) =
        split_process(ident).ok_or("identifier is neither name.pid nor a connection")?;
    Ok(Ident::Process(Cow::Borrowed(name), pid))
}

impl Endpoint<'_> {
    fn into_owned(self) -> Endpoint<'static> {
        Endpoint {
            host: self.host.map(|h| Cow::Owned(h.into_owned())),
            port: self.port,
        }
    }
}

/// An empty byte field is "no value" (listeners, unbound sockets); anything else must be an
/// unsigned decimal integer.
fn number_field(text: &str) -> Result<Option<u64>, &'static str> {
    if text.is_empty() {
        return Ok(None);
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("byte count is not an unsigned integer");
    }
    text.parse::<u64>()
        .map(Some)
        .map_err(|_| "byte count does not fit in 64 bits")
}

/// `name.pid`, split at the last dot. The name is kept exactly, trailing spaces included.
pub fn split_process(ident: &str) -> Option<(&str, u32)> {
    let (name, pid) = ident.rsplit_once('.')?;
    if name.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, pid.parse().ok()?))
}

/// `proto local<->remote`, where proto is a lowercase word ending in 4 or 6 (`tcp4`, `quic6`).
fn split_connection(ident: &str) -> Option<(&str, Endpoint<'_>, Endpoint<'_>)> {
    let (proto, rest) = ident.split_once(' ')?;
    let family_ok = proto.len() >= 2
        && proto.ends_with(['4', '6'])
        && proto[..proto.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_lowercase());
    if !family_ok {
        return None;
    }
    let (local, remote) = rest.split_once("<->")?;
    Some((
        proto,
        parse_endpoint(unpad(local))?,
        parse_endpoint(unpad(remote))?,
    ))
}

/// `a.b.c.d:port`, `host:port`, `*:*`, IPv6 `addr.port` (`fe80::1%lo0.53`), `*.*`, `*.5353`.
pub fn parse_endpoint(text: &str) -> Option<Endpoint<'_>> {
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && is_port(p) => (h, p),
        _ => text.rsplit_once('.').filter(|(_, p)| is_port(p))?,
    };
    if host.is_empty() {
        return None;
    }
    Some(Endpoint {
        host: (host != "*").then_some(Cow::Borrowed(host)),
        port: if port == "*" {
            None
        } else {
            Some(port.parse().ok()?)
        },
    })
}

fn is_port(p: &str) -> bool {
    p == "*" || (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests;
