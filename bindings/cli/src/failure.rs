//! Why a command failed, and the exit code that tells a script.

use serde_json::json;
use walletlog::{json as wljson, Error, ErrorKind, PluginErrorKind, SignatureError};

/// Exit codes (documented in `main.rs` and `walletlog --help`).
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_REFUSED: u8 = 3;
pub const EXIT_FAILED: u8 = 4;
pub const EXIT_AUDIT_DAMAGED: u8 = 5;

/// Core's fields whose option is spelled otherwise on the command line:
/// a refusal names both (`invalid event_types (--type): ...`).
const FLAGS: &[(&str, &str)] = &[
    ("event_types", "--type"),
    ("as_of", "--as-of"),
    ("audit_key_hex", "--audit-key-env or --audit-key-file"),
];

#[derive(Debug)]
pub enum Failure {
    /// A bad argument or an unreadable input file.
    Usage(String),
    /// walletlog refused or failed; the kind decides the code.
    Ledger(Error),
    /// A refused input line of `ingest`: its number and why.
    Line(usize, Error),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Ledger(e) | Failure::Line(_, e) => match e {
                // The plugin read the delivery and refused it, or it is
                // too large to be read, or names a provider with no plugin:
                // the input's fault, as a bad signature is.
                Error::Plugin(p)
                    if matches!(
                        p.kind,
                        PluginErrorKind::Malformed
                            | PluginErrorKind::Unsupported
                            | PluginErrorKind::RequestTooLarge
                            | PluginErrorKind::NotInstalled
                    ) =>
                {
                    EXIT_REFUSED
                }
                _ => match e.kind() {
                    ErrorKind::Validation
                    | ErrorKind::Conflict
                    | ErrorKind::Signature
                    | ErrorKind::NotFound => EXIT_REFUSED,
                    _ => EXIT_FAILED,
                },
            },
        }
    }

    /// Prints to standard error: `walletlog: <message>`, or with `--json`
    /// `{"error": {"kind": ..., "message": ..., "line": ...}}`.
    pub fn print(&self, as_json: bool) {
        if as_json {
            let value = match self {
                Failure::Usage(m) => wljson::face_error("usage", m, None),
                Failure::Ledger(e) => wljson::error(e),
                Failure::Line(line, e) => {
                    let mut v = wljson::error(e);
                    v["line"] = json!(line);
                    v
                }
            };
            eprintln!("{}", json!({ "error": value }));
        } else {
            match self {
                Failure::Usage(m) => eprintln!("walletlog: {m}"),
                Failure::Ledger(Error::Validation(v)) if v.index.is_none() => {
                    match FLAGS.iter().find(|(field, _)| *field == v.field) {
                        Some((field, flag)) => {
                            eprintln!("walletlog: invalid {field} ({flag}): {}", v.reason)
                        }
                        None => eprintln!("walletlog: {v}"),
                    }
                }
                Failure::Ledger(e) => {
                    eprintln!("walletlog: {e}");
                    if let Error::Signature(SignatureError::NoSecret { .. }) = e {
                        eprintln!(
                            "walletlog: give the secret with --secret-env VAR or --secret-file FILE"
                        );
                    }
                }
                Failure::Line(line, e) => eprintln!("walletlog: line {line}: {e}"),
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Ledger(e)
    }
}

impl From<walletlog::ValidationError> for Failure {
    fn from(e: walletlog::ValidationError) -> Self {
        Failure::Ledger(Error::Validation(e))
    }
}
