//! `walletlog`: the ledger from a shell.
//!
//! Every command opens the ledger at `--db`, `$WALLETLOG_DB` or
//! `./walletlog.db`, prints a human table (or, with `--json`, one JSON
//! document; `export` always writes JSONL), and exits with a code that
//! tells a script what happened:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 2 | usage: a bad option or argument, an unreadable input file |
//! | 3 | input refused: invalid, conflicting, badly signed, not found, or a webhook its plugin calls malformed or unsupported; nothing of it stored |
//! | 4 | failure: storage (I/O, a foreign or newer file) or a plugin (a trap, an exhausted budget, invalid output) |
//! | 5 | `audit verify` found the trail damaged |
//!
//! Secrets (webhook secrets, the audit key) are read only from the
//! environment or a file, never from the command line.
//!
//! `WALLETLOG_LOG=info` (or `warn`, `debug`, ...) prints the library's logs
//! to standard error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod commands;
mod failure;
mod table;

use failure::Failure;

#[derive(Parser, Debug)]
#[command(
    name = "walletlog",
    version,
    about = "Wallet transaction history: exactly-once ingestion, audit trail, history and balances",
    after_help = "Exit codes: 0 success, 2 usage, 3 input refused (invalid, conflicting, \
                  badly signed, not found, malformed or unsupported by its plugin, too large \
                  for it, no plugin for its provider), 4 storage or plugin failure (a trap, \
                  an exhausted budget, invalid output), 5 audit trail damaged.\n\
                  Environment: WALLETLOG_DB (the ledger file), WALLETLOG_LOG (log level on stderr)."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct Global {
    /// The ledger file.
    #[arg(
        long,
        global = true,
        env = "WALLETLOG_DB",
        default_value = "walletlog.db",
        value_name = "PATH"
    )]
    db: PathBuf,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// fsync at every commit (`full`) or not (`normal`).
    #[arg(
        long,
        global = true,
        default_value = "full",
        value_parser = clap::builder::PossibleValuesParser::new(walletlog::Durability::NAMES)
    )]
    durability: String,
    /// Read the audit key (hex) from this environment variable.
    #[arg(
        long,
        global = true,
        value_name = "VAR",
        conflicts_with = "audit_key_file"
    )]
    audit_key_env: Option<String>,
    /// Read the audit key (hex) from this file.
    #[arg(long, global = true, value_name = "FILE")]
    audit_key_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ingest walletlog event JSON, one event a line; stops at the first refused line.
    Ingest {
        /// A JSONL file, or `-` for standard input.
        file: PathBuf,
    },
    /// Verify, normalize (in the plugin's sandbox) and ingest one provider webhook.
    Webhook(commands::WebhookArgs),
    /// One page of a wallet's history, newest first.
    History(commands::HistoryArgs),
    /// A wallet's balance per currency, now or at a point in time.
    Balance {
        wallet: String,
        /// Only events with occurred_at <= this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        as_of: Option<String>,
    },
    /// The webhook inbox: deliveries, dead letters, replays.
    #[command(subcommand)]
    Inbox(commands::InboxCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Normalizer plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Write every event, in storage order, as JSONL to standard output.
    Export {
        /// Only events stored after this sequence.
        #[arg(long, default_value_t = 0, value_name = "N")]
        since_sequence: u64,
    },
    /// Backfill events from a JSONL file: every line is tried, refused lines
    /// are reported by number, and a summary closes.
    Import {
        /// A JSONL file, or `-` for standard input.
        file: PathBuf,
    },
    /// Copy the ledger to a new file with SQLite's online backup (writers
    /// keep working), then verify the copy's audit trail.
    Backup {
        /// The new file; an existing one is never overwritten.
        dest: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the hash chain, every event's fingerprint, every balance and
    /// kept webhook body; with checkpoints, also prove the ledger extends
    /// each (a cut tail, a rollback, another ledger or a bad signature is
    /// damage, exit 5).
    Verify {
        /// Checkpoint files written by `audit checkpoint` (`--checkpoint A B`
        /// or `--checkpoint A --checkpoint B`).
        #[arg(long = "checkpoint", value_name = "FILE", num_args = 1..)]
        checkpoints: Vec<PathBuf>,
        /// The public key of the key that signed them (64 hex digits, or
        /// its 32 raw bytes).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// Print a checkpoint of the audit trail's head, signed with the Ed25519
    /// key in FILE (64 hex digits, or its 32 raw bytes): keep it outside
    /// the ledger's host.
    Checkpoint {
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
    /// Make a new Ed25519 key pair for checkpoints: the signing key (mode
    /// 0600) and the public key, as 64 hex digits each.
    Keygen {
        #[arg(long, value_name = "FILE")]
        signing_key_file: PathBuf,
        #[arg(long, value_name = "FILE")]
        public_key_file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Load a plugin in the sandbox and report what it declares, or why it is refused.
    Check {
        /// The plugin component (.wasm).
        file: PathBuf,
    },
    /// Run a plugin on one webhook body and print its events (or its error)
    /// and what the call cost against the limits; stores nothing, checks no
    /// signature. For plugin authors.
    Run(commands::RunArgs),
}

fn main() -> ExitCode {
    restore_sigpipe();
    // `WALLETLOG_DB=` (set, but empty) means "not set", as in most tools,
    // rather than a --db given without its value.
    if std::env::var_os("WALLETLOG_DB").is_some_and(|v| v.is_empty()) {
        std::env::remove_var("WALLETLOG_DB");
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with code 0; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    init_logs();
    let json = cli.global.json;
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            failure.print(json);
            ExitCode::from(failure.code())
        }
    }
}

/// Rust ignores SIGPIPE, so writing to a closed pipe (`walletlog history
/// w | head`) would panic. Restoring the default makes the command end
/// quietly there, as Unix tools do.
fn restore_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; sets
    // the disposition of one signal to its default.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Logs to standard error at the level `WALLETLOG_LOG` names; none without it.
fn init_logs() {
    let Ok(level) = std::env::var("WALLETLOG_LOG") else {
        return;
    };
    match level.parse::<tracing_subscriber::filter::LevelFilter>() {
        Ok(level) => tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .init(),
        Err(_) => eprintln!(
            "walletlog: WALLETLOG_LOG={level:?} is not a level \
             (error, warn, info, debug, trace, off); logging is off"
        ),
    }
}

pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;
