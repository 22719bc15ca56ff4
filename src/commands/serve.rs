//! `netmon serve`: check the options, then run the localhost server (`crate::serve`).

use std::path::PathBuf;

use crate::cli::ServeArgs;
use crate::serve::{self, Options};

pub fn run(db: PathBuf, a: ServeArgs) -> anyhow::Result<()> {
    serve::run(Options {
        db,
        listen: a.listen,
        allow_remote: a.allow_remote,
        print_token: a.print_token,
        print_metrics_token: a.print_metrics_token,
        metrics_limits: crate::query::metrics::Limits {
            apps: a.metrics_apps as usize,
            websites: a.metrics_websites as usize,
            networks: a.metrics_networks as usize,
            min_bytes: a.metrics_min_bytes,
        },
        client_timeout: a.client_timeout,
    })
}
