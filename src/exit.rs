//! Exit codes, decided in one place: 0 ok, 1 user error (bad input, missing database, a tool or
//! source that is not available here), 2 runtime failure. A broken pipe (`netmon apps | head`)
//! is not a failure and exits 0.

use std::process::ExitCode;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    User = 1,
    Runtime = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// An error the user can fix by changing what they typed or where they point netmon.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Shorthand: a [`UserError`] as an `anyhow::Error`.
pub fn user(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError(msg.into()))
}

/// The exit code for an error, by what is in its chain.
pub fn classify(err: &anyhow::Error) -> Exit {
    if is_broken_pipe(err) {
        return Exit::Ok;
    }
    for cause in err.chain() {
        if cause.downcast_ref::<UserError>().is_some() {
            return Exit::User;
        }
        if let Some(e) = cause.downcast_ref::<crate::store::Error>() {
            return if e.is_user_error() {
                Exit::User
            } else {
                Exit::Runtime
            };
        }
        if let Some(e) = cause.downcast_ref::<crate::query::Error>() {
            return if e.is_user_error() {
                Exit::User
            } else {
                Exit::Runtime
            };
        }
        if let Some(e) = cause.downcast_ref::<crate::source::Error>() {
            return if e.is_permanent() {
                Exit::User
            } else {
                Exit::Runtime
            };
        }
    }
    Exit::Runtime
}

/// `netmon apps | head` closes our stdout early: that is the reader's choice, not an error.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
