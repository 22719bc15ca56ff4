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
        client_timeout: a.client_timeout,
    })
}
