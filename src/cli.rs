//! The command line: every subcommand's flags, with the help text users read.
//!
//! `--help`, the man pages and the shell completions are all generated from these types, so
//! they cannot drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::input::{Count, Span};
use crate::source::SourceKind;

const ABOUT: &str = "Record which programs (and websites) use the network, and when";

const LONG_ABOUT: &str = "\
Record which programs (and websites) use the network, and when.

`netmon record` samples per-process byte counters (macOS: nettop; Linux: the kernel) and keeps \
exact per-tick deltas in a local SQLite database, with hourly and daily rollups. The query \
subcommands read that database.";

const EXAMPLES: &str = "\
Examples:
  netmon record                     record until Ctrl-C, into the default database
  netmon apps --since 7d            which programs used the network this week
  netmon apps --json | jq '.[0]'    the same as JSON

Exit codes: 0 ok, 1 user error (bad input, nothing to read, source unavailable), 2 runtime failure.";

#[derive(Debug, Parser)]
#[command(name = "netmon", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
#[command(propagate_version = true, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The database file.
    ///
    /// Default: ~/Library/Application Support/netmon/netmon.db on macOS,
    /// $XDG_DATA_HOME/netmon/netmon.db (or ~/.local/share/netmon/netmon.db) elsewhere.
    #[arg(long, global = true, env = "NETMON_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// How much to log on stderr: error, warn, info, debug or trace.
    ///
    /// RUST_LOG, when set, takes precedence (for example RUST_LOG=netmon=debug).
    #[arg(long, global = true, value_name = "LEVEL", default_value = "info")]
    pub log_level: tracing::Level,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Record(RecordArgs),
    Status(StatusArgs),
    Service(ServiceArgs),
    Completions(CompletionsArgs),
    Apps(AppsArgs),
    Networks(NetworksArgs),
    Timeline(TimelineArgs),
    Top(TopArgs),
    Report(ReportArgs),
    Domains(DomainsArgs),
    Serve(ServeArgs),
    #[command(hide = true)]
    GenerateHistory(GenerateArgs),
    /// Rewrite the committed completions, man pages and service examples (for developers).
    #[command(hide = true)]
    GenerateDocs(GenerateDocsArgs),
}

/// The time range of a query (shared by every query subcommand).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Range")]
pub struct RangeArgs {
    /// Cover this long up to now, e.g. 90m, 24h, 7d, 2w.
    ///
    /// Units: s, m, h, d, w. Without --since, --from or --until a query covers the last 24
    /// hours.
    #[arg(long, value_name = "DURATION", value_parser = crate::query::range::parse_since,
          conflicts_with_all = ["from", "until"])]
    pub since: Option<std::time::Duration>,

    /// Start here: a date (2024-05-01, today, yesterday) or a local date-time
    /// ("2024-05-01 13:30"), or RFC 3339 with an offset.
    ///
    /// Without --until the range ends now.
    #[arg(long, value_name = "WHEN", value_parser = crate::query::range::parse_when)]
    pub from: Option<crate::query::range::When>,

    /// End here (exclusive); a date means the end of that day, so --from D --until D is day D.
    ///
    /// Without --from the range starts where recording began.
    #[arg(long, value_name = "WHEN", value_parser = crate::query::range::parse_when)]
    pub until: Option<crate::query::range::When>,

    /// Answer as if it were this instant (RFC 3339), for reproducible reports and tests.
    #[arg(long, hide = true, value_name = "RFC3339", value_parser = parse_now)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// `--now`: an RFC 3339 instant.
fn parse_now(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e} (use RFC 3339, e.g. 2024-05-01T12:00:00Z)"))
}

impl RangeArgs {
    pub fn spec(&self) -> crate::query::RangeSpec {
        crate::query::RangeSpec {
            since: self.since,
            from: self.from,
            until: self.until,
        }
    }
}

/// How results are printed (shared by every query subcommand).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Print one JSON document instead of a table.
    ///
    /// Bytes are integers, times RFC 3339 UTC; every row is listed unless --limit is given.
    /// The schema is documented in the README.
    #[arg(long, conflicts_with_all = ["ndjson", "csv"])]
    pub json: bool,

    /// Print one JSON object per line (newline-delimited JSON), one per row.
    #[arg(long, conflicts_with = "csv")]
    pub ndjson: bool,

    /// Print CSV (RFC 4180) with a header row and raw numbers.
    #[arg(long)]
    pub csv: bool,

    /// Show exact byte counts in tables instead of human units.
    ///
    /// Human units are decimal: 1 kB = 1000 bytes, 1 MB = 1000 kB; rates are per second.
    /// JSON and CSV are always exact.
    #[arg(long)]
    pub bytes: bool,
}

/// Traffic per application: received, sent, total, share, first and last seen.
///
/// Covers the last 24 hours unless --since, --from or --until say otherwise. Sizes are in
/// decimal units (1 MB = 1000 kB = 1,000,000 bytes) unless --bytes; bytes that could not be
/// tied to a program are a row of their own, "(unattributed: …)". The footer (and every JSON
/// row) says how much of the range was actually recorded.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon apps --since 7d --limit 10
  netmon apps --from yesterday --until yesterday --json | jq '.[] | {app, bytes_total}'")]
pub struct AppsArgs {
    /// Order of the rows: total, in, out (largest first) or name.
    #[arg(long, value_enum, default_value = "total")]
    pub sort: crate::query::apps::Sort,

    /// Show at most N rows (up to 1000000); 0 shows all.
    ///
    /// Default: 20 in a table; JSON and CSV list every row.
    #[arg(long, value_name = "N", value_parser = |s: &str| LIMIT.parse_usize(s))]
    pub limit: Option<usize>,

    /// Only applications whose name contains PATTERN (case-insensitive), or matches it as a
    /// glob when it holds * or ?.
    #[arg(long, value_name = "PATTERN")]
    pub app: Option<String>,

    /// Only the bytes counted on this network: its name, label or id (`netmon networks`).
    ///
    /// Where the source says which interface each connection used (nettop), its bytes are on
    /// that interface's network; otherwise (sockdiag, ebpf, or an interface not read) on the
    /// network that carried the most traffic in that tick. The table's footer says which; JSON
    /// and CSV rows carry `network` and `network_split` (connection, tick or mixed).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,

    #[command(flatten)]
    pub range: RangeArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Bytes each network and interface carried, and the share applications account for.
///
/// Covers the last 24 hours unless --since, --from or --until say otherwise. The interfaces'
/// own counters are netmon's second opinion on its per-application numbers: the footer says
/// how much of what the interfaces carried applications account for (below 100% is normal:
/// headers and acknowledgements are not payload). Loopback, tunnels and bridges are listed
/// but not counted in that total (their bytes cross another interface too, or none). A network
/// is named by its Wi-Fi name where readable, else by its default gateway's hardware address,
/// else by its interface, until you name it.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
Examples:
  netmon networks --since 30d
  netmon networks name 2 \"Phone hotspot\""
)]
pub struct NetworksArgs {
    #[command(subcommand)]
    pub command: Option<NetworksCommand>,

    #[command(flatten)]
    pub range: RangeArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum NetworksCommand {
    /// Give a network a name of your own (shown everywhere instead of its label).
    #[command(after_help = "\
Examples:
  netmon networks name 2 \"Phone hotspot\"
  netmon networks name gw:aa:bb:cc:dd:ee:01 Home")]
    Name {
        /// The network: its id, current name, label or key (`netmon networks` lists them).
        network: String,
        /// The new name; an empty string removes the name.
        name: String,
    },
    /// Set a data cap on a network (or `all`), or remove it with --remove.
    ///
    /// `status`, `networks` and the recorder follow the cap: used, left, the period's end and
    /// a forecast at the current pace; the recorder announces 80% and 100% once per period
    /// (a log line and a desktop notification). Sizes are decimal (1 GB = 1000 MB) unless
    /// written GiB.
    #[command(after_help = "\
Examples:
  netmon networks cap \"Phone hotspot\" 20GB --period month --resets-on 12
  netmon networks cap all 5GB --period day")]
    Cap {
        /// The network: its id, name, label or key, or `all` for every network together.
        network: String,
        /// The cap, e.g. 20GB, 500MB, 1.5TB.
        #[arg(value_parser = crate::input::size, required_unless_present = "remove")]
        bytes: Option<u64>,
        /// How often the cap starts over.
        #[arg(long, value_enum, default_value = "month")]
        period: crate::calendar::Period,
        /// The day the period starts: day of the month (1–31; past a month's end, its last
        /// day) or of the week (1 = Monday … 7 = Sunday). Default 1.
        #[arg(long, value_name = "DAY", value_parser = clap::value_parser!(u32).range(1..=31))]
        resets_on: Option<u32>,
        /// Remove the network's cap.
        #[arg(long, conflicts_with_all = ["bytes", "period", "resets_on"])]
        remove: bool,
    },
}

/// Traffic per time bucket, in total or per application, with how much of each was recorded.
///
/// Covers the last 24 hours unless --since, --from or --until say otherwise. In a table each
/// row carries a bar proportional to its total; buckets nobody recorded say so instead of
/// showing zero. Sizes are decimal (1 MB = 1000 kB) unless --bytes.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon timeline --since 7d --bucket 1h
  netmon timeline --since 30d --bucket 1d --app firefox --json")]
pub struct TimelineArgs {
    /// Bucket length: a duration dividing a day (5m, 15m, 1h, 6h) or whole days (1d, 7d).
    ///
    /// Default auto: 5m up to 6 hours, 1h up to 3 days, 1d up to 90 days, 7d beyond. Buckets
    /// start at local midnight (7d on Mondays); where only hourly or daily totals are kept,
    /// shorter buckets are merged to whole hours or days.
    #[arg(long, value_name = "DURATION", default_value = "auto",
          value_parser = crate::query::timeline::parse_bucket)]
    pub bucket: crate::query::timeline::BucketArg,

    /// Only applications whose name contains PATTERN (case-insensitive), or matches it as a
    /// glob when it holds * or ?.
    #[arg(long, value_name = "PATTERN")]
    pub app: Option<String>,

    /// One row per bucket and application (only those with traffic) instead of totals.
    #[arg(long)]
    pub per_app: bool,

    /// Only the bytes counted on this network: its name, label or id (`netmon networks`).
    ///
    /// Where the source says which interface each connection used (nettop), its bytes are on
    /// that interface's network; otherwise on the network that carried the most traffic in
    /// that tick. JSON and CSV rows carry `network` and `network_split` (connection, tick or
    /// mixed).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,

    #[command(flatten)]
    pub range: RangeArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Browser traffic per website: received, sent, and how it was attributed.
///
/// Covers the last 24 hours unless --since, --from or --until say otherwise. Needs the browser
/// extension reporting to `netmon serve` while `netmon record` runs. Hosts roll up to their
/// registrable domain (Public Suffix List: www.bbc.co.uk is bbc.co.uk) unless --no-rollup.
/// "Connection" is the share matched by the connection's server address, the rest was split
/// by the time the site was the active tab; "(no active tab)" is browser traffic with no site.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon domains --since 7d --app firefox
  netmon domains --since 24h --hosts --json | jq '.[] | {domain, bytes_total}'")]
pub struct DomainsArgs {
    #[command(flatten)]
    pub range: RangeArgs,

    /// One row per host (www.bbc.co.uk, static.bbc.co.uk) instead of per registrable domain.
    #[arg(long, conflicts_with = "hosts")]
    pub no_rollup: bool,

    /// List each domain's hosts under it (nested "hosts" in JSON; following rows in CSV).
    #[arg(long)]
    pub hosts: bool,

    /// Only browsers whose application name contains PATTERN (case-insensitive), or matches
    /// it as a glob when it holds * or ?.
    #[arg(long, value_name = "PATTERN")]
    pub app: Option<String>,

    /// Order of the rows: total, in, out (largest first) or name.
    #[arg(long, value_enum, default_value = "total")]
    pub sort: crate::query::apps::Sort,

    /// Show at most N rows (up to 1000000); 0 shows all.
    ///
    /// Default: 20 in a table; JSON and CSV list every row.
    #[arg(long, value_name = "N", value_parser = |s: &str| LIMIT.parse_usize(s))]
    pub limit: Option<usize>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Write a report of the recorded history: one self-contained file to open, mail or archive.
#[derive(Debug, Args)]
#[command(
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = "\
Examples:
  netmon report html                            the last 30 days into netmon-report.html
  netmon report html --since 7d -o week.html"
)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub format: ReportFormat,
}

#[derive(Debug, Subcommand)]
pub enum ReportFormat {
    Html(ReportHtmlArgs),
}

/// An offline HTML report: headline figures, a timeline stacked by application, top
/// applications and websites, an hour-of-day heatmap, daily and monthly totals, and every
/// application in a sortable table.
///
/// Covers the last 30 days unless --since, --from or --until say otherwise (not the 24 hours
/// the query subcommands default to). The file needs no network and no server: styles, script
/// and data are inside it, and its Content-Security-Policy forbids requests to any host. Its
/// figures come from the same queries as `netmon apps` and `netmon timeline`, and its data is
/// embedded as JSON (<script id="netmon-data">). Sizes are decimal (1 MB = 1000 kB); times
/// are in the local time zone (TZ).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon report html --since 30d -o usage.html
  netmon report html --from 2024-05-01 --until 2024-05-31 -o - | gzip > may.html.gz")]
#[command(mut_arg("since", |a| a
    .help("Cover this long up to now, e.g. 24h, 7d, 30d, 365d")
    .long_help("Cover this long up to now, e.g. 24h, 7d, 30d, 365d.\n\nUnits: s, m, h, d, w. \
                Without --since, --from or --until the report covers the last 30 days.")))]
pub struct ReportHtmlArgs {
    /// Where to write the report; - writes it to stdout.
    ///
    /// Default: netmon-report.html in the current directory. An existing file is replaced
    /// atomically (a reader never sees half a report) and keeps its owner and mode; a
    /// symbolic link is followed and its target written; a FIFO or device is written as a
    /// stream.
    #[arg(short, long, value_name = "FILE", default_value = "netmon-report.html")]
    pub output: PathBuf,

    /// How many applications the timeline draws separately (1 to 10), largest first; the rest
    /// are stacked as "other".
    #[arg(long, value_name = "N", default_value_t = 6,
          value_parser = clap::value_parser!(u8).range(1..=10))]
    pub series: u8,

    /// Only the applications' bytes counted on this network: its name, label or id
    /// (`netmon networks`). Websites are not split by network and show every network.
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,

    #[command(flatten)]
    pub range: RangeArgs,
}

/// Sample per-process network counters into the database until stopped.
///
/// Runs until Ctrl-C or SIGTERM, then commits the tick in progress and exits 0. Only one
/// recorder may write to a database at a time.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon record
  netmon record --interval 2s --keep-raw 14d")]
pub struct RecordArgs {
    /// Time between samples, e.g. 5s, 2s, 500ms (from 10ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_interval)]
    pub interval: Duration,

    /// How often ticks are written to the database, e.g. 10m, 1m (from 0 to 1h); 0 writes
    /// every tick.
    ///
    /// Ticks are kept in memory and written together, each still its own tick: a laptop's
    /// disk sees one small write every few minutes instead of one per tick. The window is
    /// counted in ticks (10m at 5s: 120); ticks that run late are written after twice the
    /// time at most. A clean stop
    /// (Ctrl-C, SIGTERM, the service stopping) writes everything first; a crash or power loss
    /// loses only the bytes of processes that exited inside the unwritten window (the README's
    /// "What a crash can lose"). `netmon top` and `status` see the unwritten ticks live.
    #[arg(long, value_name = "DURATION", default_value = "10m", env = "NETMON_WRITE_EVERY",
          value_parser = parse_write_every)]
    pub write_every: Duration,

    /// Where the counters come from.
    ///
    /// auto picks nettop on macOS and the best kernel source this user may use on Linux.
    #[arg(long, value_enum, default_value = "auto")]
    pub source: SourceKind,

    /// Keep per-tick samples this long, e.g. 7d (from 1h to 36500d); 0 keeps them forever.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = parse_keep)]
    pub keep_raw: Keep,

    /// Keep hourly totals this long, e.g. 90d (from 1h to 36500d); 0 keeps them forever.
    ///
    /// Daily totals are kept forever.
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = parse_keep)]
    pub keep_hourly: Keep,

    /// Also count traffic that never leaves this machine (loopback).
    ///
    /// Off by default: it is not network use, and each local connection would be counted
    /// twice, once under each end.
    #[arg(long)]
    pub include_loopback: bool,

    /// Announce an application that moves more than RATE for a sustained minute, e.g. 50MB/s.
    ///
    /// A log line and a desktop notification (notify-send on Linux, osascript on macOS), then
    /// nothing more about that application for 15 minutes. Data caps (`netmon networks cap`)
    /// are announced the same way at 80% and 100%.
    #[arg(long, value_name = "RATE", value_parser = crate::input::rate)]
    pub alert_rate: Option<u64>,

    /// Make the database readable (never writable) by the recorder's group.
    ///
    /// For a recorder running as another user (the system service runs as root) whose data a
    /// user reads: files are created 0640 instead of 0600. `netmon service install --system`
    /// sets it.
    #[arg(long)]
    pub share_with_group: bool,

    /// Stop after this many ticks (for tests and benchmarks).
    #[arg(long, hide = true, value_name = "N", value_parser = |s: &str| TICKS.parse(s))]
    pub ticks: Option<u64>,

    /// Give up on one sample after this long (the source process is killed).
    #[arg(long, hide = true, value_name = "DURATION", default_value = "10s",
          value_parser = |s: &str| SAMPLE_TIMEOUT.parse(s))]
    pub sample_timeout: Duration,

    /// Bytes per second per counter above which a delta is logged as impossible and dropped.
    #[arg(
        long,
        hide = true,
        value_name = "BYTES",
        default_value = "12500000000",
        value_parser = |s: &str| MAX_RATE.parse(s)
    )]
    pub max_rate: u64,

    /// Resolve pids from this JSON process table instead of asking the OS (tests: processes
    /// this machine does not have, such as Safari and its WebKit services).
    #[arg(long, hide = true, value_name = "FILE")]
    pub process_table: Option<PathBuf>,
}

/// Receive the browser extension's reports and serve /metrics to Prometheus, on a local port.
///
/// Listens on 127.0.0.1:7500 until Ctrl-C or SIGTERM and stores what the extension reports
/// (each browser's active-tab host, and which server address each host was served from) in
/// the database `netmon record` writes, so the recorder can split a browser's traffic across
/// websites (`netmon domains`). GET /metrics answers in the Prometheus text format (or
/// OpenMetrics): all-time bytes per application, unattributed reason and website as counters,
/// recorded time and gaps, and the recorder's state, read from the stored history. Every
/// request needs a token, created on first run in a file next to the database (readable only
/// by you): the extension's (--print-token), or a read-only one for /metrics
/// (--print-metrics-token).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon serve                      listen on 127.0.0.1:7500 until Ctrl-C
  netmon serve --print-token        show the token to paste into the extension's options
  netmon serve --print-metrics-token > netmon.token
                                    the read-only token Prometheus sends to GET /metrics")]
pub struct ServeArgs {
    /// Address and port to listen on.
    ///
    /// Must be a loopback address (127.0.0.1, [::1]) unless --allow-remote is given. Port 0
    /// picks a free port (printed at start).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:7500",
          value_parser = crate::input::socket_addr)]
    pub listen: SocketAddr,

    /// Allow --listen on an address other machines can reach.
    ///
    /// The extension runs on this machine and never needs it; the token would cross the
    /// network unencrypted.
    #[arg(long)]
    pub allow_remote: bool,

    /// Print the access token (creating it if needed) and exit.
    ///
    /// The token lives in <database>.token; delete that file to make a new one.
    #[arg(long)]
    pub print_token: bool,

    /// Print the read-only token of GET /metrics (creating it if needed) and exit.
    ///
    /// It lives in <database>.metrics-token; delete that file to make a new one. It is
    /// accepted only by /metrics, and the extension's token is not.
    #[arg(long, conflicts_with = "print_token")]
    pub print_metrics_token: bool,

    /// How many applications get a series of their own in /metrics; the rest are
    /// app="(other)".
    ///
    /// The first applications to reach --metrics-min-bytes join, largest first, and stay;
    /// lowering this stops new ones joining but removes none (a counter must never go down).
    /// 0 to 10000.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = |s: &str| METRICS_NAMES.parse(s))]
    pub metrics_apps: u64,

    /// How many websites (registrable domains) get a series of their own in /metrics; the rest
    /// are domain="(other)".
    ///
    /// Chosen as for --metrics-apps. 0 to 10000.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = |s: &str| METRICS_NAMES.parse(s))]
    pub metrics_websites: u64,

    /// How many network and interface pairs get a series of their own in /metrics; the rest
    /// are network="(other)", one series per interface kind.
    ///
    /// Chosen as for --metrics-apps (a Docker host's veth pairs and a laptop's hotel Wi-Fi
    /// networks come and go). 0 to 10000.
    #[arg(long, value_name = "N", default_value_t = 50,
          value_parser = |s: &str| METRICS_NAMES.parse(s))]
    pub metrics_networks: u64,

    /// Bytes (received and sent, all time) an application, website or network interface needs
    /// before it can get a series of its own in /metrics.
    ///
    /// Keeps one-off programs from taking the places. 0 to 10^15.
    #[arg(long, value_name = "BYTES", default_value_t = 1_000_000,
          value_parser = |s: &str| METRICS_MIN_BYTES.parse(s))]
    pub metrics_min_bytes: u64,

    /// How long a client may take to send a whole request (head and body) before it gets 408.
    #[arg(long, hide = true, value_name = "DURATION", default_value = "5s",
          value_parser = |s: &str| CLIENT_TIMEOUT.parse(s))]
    pub client_timeout: Duration,
}

/// Show whether a recorder is running, what it records, and anything wrong.
///
/// Reads the database and the recorder's lock without disturbing a running recorder: who
/// holds the lock (pid, since when), the last committed sample, the source and what it cannot
/// see, the database's size, rows per table and retention, and problems found (no recorder,
/// a crashed or stalled one, nettop missing, file permissions). Exits 0 whenever it could
/// report; problems are listed, not signalled by the exit code.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon status
  netmon status --json | jq .recorder.state")]
pub struct StatusArgs {
    /// Print one JSON object instead of text (fields are documented in the README).
    #[arg(long)]
    pub json: bool,

    /// Call a running recorder stalled when it has committed nothing for this long beyond
    /// its interval.
    #[arg(long, hide = true, value_name = "DURATION", default_value = "60s",
          value_parser = |s: &str| STALLED_AFTER.parse(s))]
    pub stalled_after: Duration,

    /// Whose service to ask about the installed recorder (default: launchd on macOS; tests).
    #[arg(long, value_enum, hide = true)]
    pub service_manager: Option<ServiceManager>,
}

/// Run the recorder (and optionally `netmon serve`) as a background service.
///
/// macOS: a LaunchAgent in ~/Library/LaunchAgents, loaded with launchctl, logging to
/// ~/Library/Logs/netmon/. Linux: a systemd user unit in ~/.config/systemd/user, run with
/// `systemctl --user` and logging to the journal; or, with --system, a system unit that runs
/// as root with the ebpf source and writes /var/lib/netmon/netmon.db, readable by one user.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon service install                       record from now on, at every login
  netmon service install -- --interval 10s     with options for `netmon record`
  sudo netmon service install --system         Linux: all processes, eBPF, as root
  netmon service status
  netmon service uninstall")]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub command: ServiceCommand,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    Install(ServiceInstallArgs),
    Uninstall(ServiceUninstallArgs),
    Status(ServiceStatusArgs),
}

/// Which service manager and scope to talk to (every `service` subcommand takes these).
#[derive(Debug, Clone, Args)]
pub struct ServiceTarget {
    /// Linux: a system-wide unit run as root, instead of a unit of your own user.
    #[arg(long)]
    pub system: bool,

    /// The service manager to use (default: launchd on macOS, systemd elsewhere).
    #[arg(long, value_enum, hide = true)]
    pub manager: Option<ServiceManager>,

    /// Write system-wide files under this directory instead of / (packaging, tests).
    #[arg(long, hide = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// A service manager netmon can write definitions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceManager {
    Launchd,
    Systemd,
}

/// Write the service definition, enable it at login (or boot) and start it now.
///
/// Installing again replaces the definition and restarts the service, so it is also how
/// options are changed. Options for `netmon record` go after `--`; the database is the one
/// --db (or NETMON_DB) names, else the default, written into the definition as an absolute
/// path.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon service install --dry-run
  netmon service install --serve -- --keep-raw 30d")]
pub struct ServiceInstallArgs {
    #[command(flatten)]
    pub target: ServiceTarget,

    /// Also install `netmon serve` (the ingest server for the browser extension).
    #[arg(long, conflicts_with = "system")]
    pub serve: bool,

    /// With --system: the user who may read the database (its group is given read access).
    ///
    /// Default: the user who ran sudo (SUDO_USER).
    #[arg(long, value_name = "USER", requires = "system")]
    pub reader: Option<String>,

    /// Print the files and the commands, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Options passed to `netmon record`, after `--` (see `netmon record --help`).
    #[arg(last = true, value_name = "RECORD_OPTIONS", allow_hyphen_values = true)]
    pub record_args: Vec<String>,
}

/// Stop the service and remove its definition. The database is kept.
///
/// Removes the recorder's and the server's definitions, whichever are installed. To delete
/// the recorded data too, see "Uninstall" in the README.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon service uninstall
  sudo netmon service uninstall --system")]
pub struct ServiceUninstallArgs {
    #[command(flatten)]
    pub target: ServiceTarget,

    /// Print the commands, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Show whether the service is installed and running, as the service manager sees it.
///
/// For the database's side (last sample, rows, problems), see `netmon status`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon service status
  netmon service status --json")]
pub struct ServiceStatusArgs {
    #[command(flatten)]
    pub target: ServiceTarget,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Print a shell completion script for netmon on stdout.
///
/// Packaged completions live in the repository's completions/ directory; this prints the
/// same script, for installs made with `cargo install`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon completions bash > ~/.local/share/bash-completion/completions/netmon
  netmon completions zsh > ~/.zfunc/_netmon")]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, powershell or elvish.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// What is using the network right now: per-application rates from the last ticks of a
/// running `netmon record`, refreshed in place.
///
/// In a terminal the screen refreshes every --refresh until q or Ctrl-C (the terminal is
/// restored); with --once, or when stdout is not a terminal, one snapshot is printed. Rates
/// are bytes over the ticks' measured duration, averaged over --window, in decimal units per
/// second (1 MB/s = 1,000,000 bytes/s). When no recorder is writing, top says so instead of
/// showing old rates.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  netmon top
  netmon top --oneline          one line for a SwiftBar/xbar menu-bar plugin")]
pub struct TopArgs {
    /// Print one snapshot and exit.
    #[arg(long)]
    pub once: bool,

    /// Print one line for menu-bar tools (SwiftBar, xbar): current rates and today's total.
    ///
    /// Format: "↓ 1.20 MB/s ↑ 34.0 kB/s · 3.40 GB today"; when nothing is recording,
    /// "netmon: not recording · 3.40 GB today | color=gray".
    #[arg(long, conflicts_with_all = ["once", "json", "ndjson", "csv"])]
    pub oneline: bool,

    /// Average rates over the ticks of this window, e.g. 15s, 1m (from 1s to 1d).
    #[arg(long, value_name = "DURATION", default_value = "15s",
          value_parser = |s: &str| WINDOW.parse(s))]
    pub window: Duration,

    /// Redraw this often in a terminal, e.g. 1s, 500ms (from 50ms to 1h).
    #[arg(long, value_name = "DURATION", default_value = "1s",
          value_parser = |s: &str| REFRESH.parse(s))]
    pub refresh: Duration,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Fill a new database with a deterministic synthetic history (for benchmarks).
///
/// Writes through the recorder's own write path and retention: 300 applications, about 40
/// processes alive at a time, 5-second ticks inside the raw window, a daily rhythm, nights
/// asleep, a new run each week.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Days of history, ending now (or at --end); 1 to 3650.
    #[arg(long, default_value = "365", value_parser = |s: &str| Count::new(1, 3650).parse_u32(s))]
    pub days: u32,
    /// Distinct applications; 1 to 100000.
    #[arg(long, default_value = "300",
          value_parser = |s: &str| Count::new(1, 100_000).parse_usize(s))]
    pub apps: usize,
    /// Processes alive at a time; 1 to 10000.
    #[arg(long, default_value = "40", value_parser = |s: &str| Count::new(1, 10_000).parse_usize(s))]
    pub active: usize,
    /// Seed of the generator: the same seed and end give the same history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The end of the history (RFC 3339); default now.
    #[arg(long, value_parser = parse_now)]
    pub end: Option<chrono::DateTime<chrono::Utc>>,
}

/// `record --interval`. Above an hour a "recorder" would miss most connections whole.
pub const INTERVAL: Span = Span::new(
    Duration::from_millis(10),
    Duration::from_secs(3600),
    "5s, 500ms or 2m",
);
/// `record --write-every`: 0 writes every tick; past an hour a crash could lose too much.
pub const WRITE_EVERY: Span = Span::new(Duration::ZERO, Duration::from_secs(3600), "10m, 1m or 0");

/// `record --write-every`.
pub fn parse_write_every(s: &str) -> Result<Duration, String> {
    if s.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    WRITE_EVERY.parse(s)
}

/// `record --sample-timeout`.
pub const SAMPLE_TIMEOUT: Span = Span::new(
    Duration::from_millis(100),
    Duration::from_secs(600),
    "10s or 30s",
);
/// `serve --client-timeout`: the whole request, head and body, from the moment it connected.
pub const CLIENT_TIMEOUT: Span = Span::new(
    Duration::from_millis(100),
    Duration::from_secs(300),
    "5s or 500ms",
);
/// `status --stalled-after`.
pub const STALLED_AFTER: Span = Span::new(
    Duration::from_secs(1),
    Duration::from_secs(30 * 86_400),
    "60s or 10m",
);
/// `top --window`.
pub const WINDOW: Span = Span::new(
    Duration::from_secs(1),
    Duration::from_secs(86_400),
    "15s or 1m",
);
/// `top --refresh`.
pub const REFRESH: Span = Span::new(
    Duration::from_millis(50),
    Duration::from_secs(3600),
    "1s or 500ms",
);
/// `--keep-raw`, `--keep-hourly` (besides 0, forever).
pub const KEEP: Span = Span::new(
    Duration::from_secs(3600),
    Duration::from_secs(36_500 * 86_400),
    "7d, 90d, or 0 to keep forever",
);
/// `record --ticks`.
pub const TICKS: Count = Count::new(1, 1_000_000_000_000);
/// `record --max-rate`, bytes per second per counter: 1 kB/s to 1 PB/s.
pub const MAX_RATE: Count = Count::new(1000, 1_000_000_000_000_000);
/// `--limit` of the query subcommands.
pub const LIMIT: Count = Count::new(0, 1_000_000);
/// `serve --metrics-apps` and `--metrics-websites`.
pub const METRICS_NAMES: Count = Count::new(0, 10_000);
/// `serve --metrics-min-bytes`.
pub const METRICS_MIN_BYTES: Count = Count::new(0, 1_000_000_000_000_000);

/// `record --interval`: a duration such as `5s`, `100ms` or `2m`, from 10ms to 1h.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    INTERVAL.parse(s)
}

/// A retention window; `None` keeps forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep(pub Option<Duration>);

/// A retention window such as `7d`; `0` means keep forever.
pub fn parse_keep(s: &str) -> Result<Keep, String> {
    if s.trim() == "0" {
        return Ok(Keep(None));
    }
    KEEP.parse(s).map(|d| Keep(Some(d)))
}

/// Where `generate-docs` writes.
#[derive(Debug, Args)]
pub struct GenerateDocsArgs {
    /// The repository root.
    #[arg(value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_and_bad_ones_say_what_to_type() {
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert!(parse_interval("5x").expect_err("bad").contains("e.g. 5s"));
        assert!(parse_interval("0s").is_err());
        assert_eq!(parse_keep("0"), Ok(Keep(None)));
        assert_eq!(
            parse_keep("7d"),
            Ok(Keep(Some(Duration::from_secs(7 * 86400))))
        );
    }

    #[test]
    fn every_subcommand_parses_with_its_defaults() {
        let cli = Cli::try_parse_from(["netmon", "record"]).expect("record");
        let Command::Record(a) = cli.command else {
            panic!("record parsed as something else");
        };
        assert_eq!(a.interval, Duration::from_secs(5));
        assert_eq!(a.keep_raw, Keep(Some(Duration::from_secs(7 * 86400))));
        assert!(!a.share_with_group);
        let cli = Cli::try_parse_from(["netmon", "status"]).expect("status");
        assert!(matches!(
            cli.command,
            Command::Status(StatusArgs { json: false, .. })
        ));
        let cli = Cli::try_parse_from(["netmon", "service", "install", "--", "--interval", "10s"])
            .expect("service install");
        let Command::Service(ServiceArgs {
            command: ServiceCommand::Install(i),
        }) = cli.command
        else {
            panic!("service install parsed as something else");
        };
        assert_eq!(i.record_args, ["--interval", "10s"]);
        assert!(!i.target.system && !i.dry_run && !i.serve);
        let cli = Cli::try_parse_from(["netmon", "apps"]).expect("apps");
        let Command::Apps(a) = cli.command else {
            panic!("not apps")
        };
        assert_eq!(a.range.spec(), crate::query::RangeSpec::default());
        assert!(!a.output.json && !a.output.bytes);
        assert!(
            Cli::try_parse_from(["netmon", "apps", "--since", "1h", "--from", "today"]).is_err()
        );
        assert!(Cli::try_parse_from(["netmon", "apps", "--json", "--csv"]).is_err());
        let cli = Cli::try_parse_from(["netmon", "serve"]).expect("serve");
        let Command::Serve(a) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(a.listen, "127.0.0.1:7500".parse().expect("addr"));
        assert!(!a.allow_remote && !a.print_token);
    }
}
