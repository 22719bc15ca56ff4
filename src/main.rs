//! netmon: which programs and which websites used the network, and when.
//!
//! `main` only sets up the process (umask, logging), parses the command line and maps the
//! outcome to an exit code (`exit.rs`); each subcommand lives in its own module.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use tracing_subscriber::EnvFilter;

use netmon::cli::{Cli, Command};
use netmon::exit::{self, Exit};
use netmon::{commands, paths};

/// The recorder allocates and frees many small strings per nettop row (keys, names, remotes):
/// with glibc's malloc that was about a third of its CPU per tick; mimalloc halves that part
/// (`cargo bench --bench record`, README "What recording costs").
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Everything netmon creates (database, token, lock) is private to the user.
    // SAFETY: umask only changes this process's file creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::Ok,
                _ => Exit::User,
            }
            .into();
        }
    };
    init_logging(cli.global.log_level);
    match run(cli) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            let code = exit::classify(&e);
            if code != Exit::Ok {
                eprintln!("netmon: error: {e:#}");
            }
            code.into()
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let given_db = cli.global.db.as_ref();
    match cli.command {
        Command::Record(a) => commands::record::run(paths::db_path(given_db)?, a),
        Command::Status(a) => commands::status::run(&paths::db_path(given_db)?, &a),
        Command::Service(a) => commands::service::run(a.command, given_db),
        Command::Completions(a) => commands::completions::run(a.shell),
        Command::Apps(a) => commands::apps::run(&paths::db_path(given_db)?, &a),
        Command::Networks(a) => commands::networks::run(&paths::db_path(given_db)?, &a),
        Command::Timeline(a) => commands::timeline::run(&paths::db_path(given_db)?, &a),
        Command::Top(a) => commands::top::run(&paths::db_path(given_db)?, &a),
        Command::Report(a) => commands::report::run(&paths::db_path(given_db)?, &a),
        Command::Domains(a) => commands::domains::run(&paths::db_path(given_db)?, &a),
        Command::Serve(a) => commands::serve::run(paths::db_path(given_db)?, a),
        Command::GenerateHistory(a) => {
            commands::generate_history::run(&paths::db_path(given_db)?, &a)
        }
        Command::GenerateDocs(a) => commands::generate_docs::run(&a),
    }
}

/// Logs go to stderr (stdout carries only results), plain when stderr is not a terminal.
fn init_logging(level: tracing::Level) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("netmon={level}")));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}
