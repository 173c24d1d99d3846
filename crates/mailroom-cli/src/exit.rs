//! Exit codes, and how an error maps to one.

use std::fmt;
use std::process::ExitCode;

use mailroom_core::{ConnectorError, ErrorKind};

/// The documented exit codes (see `cli::EXIT_CODES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Code {
    /// 0
    Success = 0,
    /// 1: retrying will not help.
    Failure = 1,
    /// 2: usage error.
    Usage = 2,
    /// 3: somebody must sign in again.
    Reauth = 3,
    /// 4: retry later.
    Transient = 4,
}

impl Code {
    /// Which of two outcomes a run reports: re-auth first (a human must act), then
    /// plain failures, then transient ones.
    pub fn worst(self, other: Code) -> Code {
        fn rank(c: Code) -> u8 {
            match c {
                Code::Success => 0,
                Code::Transient => 1,
                Code::Failure => 2,
                Code::Usage => 3,
                Code::Reauth => 4,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    /// The code of a connector error kind.
    pub fn of_kind(kind: ErrorKind) -> Code {
        match kind {
            ErrorKind::ReauthRequired | ErrorKind::Declined | ErrorKind::Expired => Code::Reauth,
            ErrorKind::Transient | ErrorKind::Throttled => Code::Transient,
            _ => Code::Failure,
        }
    }
}

impl From<Code> for ExitCode {
    fn from(c: Code) -> ExitCode {
        ExitCode::from(c as u8)
    }
}

/// An error that carries its exit code (the message is already plain words).
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: Code,
    /// What happened and what to do.
    pub message: String,
}

impl Failure {
    /// A failure with a code.
    pub fn err(code: Code, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Failure {
            code,
            message: message.into(),
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit code of an error: the first cause in its chain that says.
pub fn code_of(err: &anyhow::Error) -> Code {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.code;
        }
        if let Some(e) = cause.downcast_ref::<mailroom_oauth::Error>() {
            return Code::of_kind(e.kind());
        }
        if let Some(e) = cause.downcast_ref::<ConnectorError>() {
            return Code::of_kind(e.kind());
        }
        // `mailroom_sync::Error::Store` is transparent: the store error is not in the chain.
        let store = cause.downcast_ref::<mailroom_store::Error>().or_else(|| {
            match cause.downcast_ref::<mailroom_sync::Error>() {
                Some(mailroom_sync::Error::Store(e)) => Some(e),
                _ => None,
            }
        });
        if let Some(e) = store {
            return if e.is_transient() {
                Code::Transient
            } else {
                Code::Failure
            };
        }
        if let Some(e) = cause.downcast_ref::<reqwest::Error>()
            && (e.is_connect() || e.is_timeout())
        {
            return Code::Transient;
        }
    }
    Code::Failure
}
