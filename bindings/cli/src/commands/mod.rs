//! The subcommands. Each one translates its arguments into calls on a
//! [`Ledger`] and its results into a table or JSON; the rules are core's.
//!
//! | file | commands |
//! |---|---|
//! | `ingest.rs` | `ingest` |
//! | `plugin.rs` | `webhook`, `plugin check`, `plugin run` |
//! | `read.rs` | `history`, `balance` |
//! | `inbox.rs` | `inbox list`, `inbox show`, `inbox replay` |
//! | `audit.rs` | `audit verify`, `audit checkpoint`, `audit keygen`, `backup` |
//! | `transfer.rs` | `export`, `import` |
//!
//! This file holds what they share: opening the ledger, reading secrets
//! and input lines, printing events.

mod audit;
mod inbox;
mod ingest;
mod plugin;
mod read;
mod transfer;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde_json::Value;
use walletlog::{Error, IngestResult, Ledger, RawAuditKey, RawOptions, WalletTransactionEvent};

use crate::failure::Failure;
use crate::{table, AuditCommand, Cli, Command, Global, PluginCommand, Result};

pub use inbox::InboxCommand;
pub use plugin::{RunArgs, WebhookArgs};
pub use read::HistoryArgs;

pub fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Ingest { file } => ingest::ingest(g, &file),
        Command::Webhook(args) => plugin::webhook(g, &args),
        Command::History(args) => read::history(g, &args),
        Command::Balance { wallet, as_of } => read::balance(g, &wallet, as_of.as_deref()),
        Command::Inbox(c) => inbox::run(g, &c),
        Command::Audit(AuditCommand::Verify {
            checkpoints,
            public_key,
        }) => audit::verify(g, &checkpoints, public_key.as_deref()),
        Command::Audit(AuditCommand::Checkpoint { key_file }) => audit::checkpoint(g, &key_file),
        Command::Audit(AuditCommand::Keygen {
            signing_key_file,
            public_key_file,
        }) => audit::keygen(g, &signing_key_file, &public_key_file),
        Command::Plugin(PluginCommand::Check { file }) => plugin::check(g, &file),
        Command::Plugin(PluginCommand::Run(args)) => plugin::run(g, &args),
        Command::Export { since_sequence } => transfer::export(g, since_sequence),
        Command::Import { file } => transfer::import(g, &file),
        Command::Backup { dest } => audit::backup(g, &dest),
    }
}

/// Opens the ledger. Commands that only read refuse to create a new file:
/// a mistyped `--db` must not look like an empty ledger.
pub(super) fn open(g: &Global, create: bool) -> Result<Ledger> {
    open_at(g, &g.db, create)
}

/// Opens the ledger at `db` with the global options.
pub(super) fn open_at(g: &Global, db: &Path, create: bool) -> Result<Ledger> {
    // A file that is missing, or empty (`touch`ed, or created by another
    // tool and never written), is seen here: SQLite would open it as an
    // empty database and the migrations would make a ledger of it. A
    // PostgreSQL schema without a ledger is refused by the engine, which
    // then creates nothing.
    let no_file = match walletlog::Location::parse(db.as_os_str()) {
        Ok(walletlog::Location::Sqlite(path)) => match std::fs::metadata(&path) {
            Err(_) => Some(""),
            Ok(m) if m.is_file() && m.len() == 0 => Some(" (the file is empty)"),
            Ok(_) => None,
        },
        _ => None,
    };
    if let (false, Some(why)) = (create, no_file) {
        return Err(Failure::usage(format!(
            "no ledger at {}{why}; pass --db or set WALLETLOG_DB",
            db.display()
        )));
    }
    let audit_key = match (&g.audit_key_env, &g.audit_key_file) {
        (Some(var), _) => Some(secret_from_env(var)?),
        (None, Some(file)) => Some(secret_from_file(file)?),
        (None, None) => None,
    };
    // Core's raw options: the same rules and messages as every other face.
    let options = RawOptions {
        durability: Some(g.durability.clone()),
        audit_key: audit_key.map(RawAuditKey::Hex),
        ..RawOptions::default()
    }
    .validate()?;
    let mut options = options;
    options.postgres.create_if_missing = create;
    match Ledger::open(db, options) {
        Err(Error::NotFound { what }) if !create => Err(Failure::usage(format!(
            "no {what}; pass --db or set WALLETLOG_DB"
        ))),
        opened => Ok(opened?),
    }
}

/// The command that prints the next page: `walletlog` with the ledger's
/// `--db` when it is not the one found without it (a PostgreSQL password
/// shown as `***`), the audit key's flag (its variable or file, never the
/// key) and `args` (the command, its options with `--cursor`, then `--`
/// before a positional argument that could read as a flag), each word
/// quoted for a POSIX shell where it needs it.
pub(super) fn next_page_command(g: &Global, args: &[String]) -> String {
    let mut words = vec!["walletlog".to_owned()];
    let implied = std::env::var_os("WALLETLOG_DB").unwrap_or_else(|| "walletlog.db".into());
    if g.db.as_os_str() != implied {
        let shown = walletlog::Location::parse(g.db.as_os_str())
            .map_or_else(|_| g.db.to_string_lossy().into_owned(), |l| l.to_string());
        words.push("--db".into());
        words.push(shell_word(&shown));
    }
    if let Some(var) = &g.audit_key_env {
        words.push("--audit-key-env".into());
        words.push(shell_word(var));
    }
    if let Some(file) = &g.audit_key_file {
        words.push("--audit-key-file".into());
        words.push(shell_word(&file.to_string_lossy()));
    }
    words.extend(args.iter().map(|a| shell_word(a)));
    words.join(" ")
}

/// A secret in a file that other users can read is hardly one: said on
/// standard error. The command goes on (some deployments mount secrets
/// group-readable on purpose).
fn warn_if_shared(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                eprintln!(
                    "walletlog: warning: {} holds a secret and other users can read it \
                     (mode {mode:04o}); chmod 600 it",
                    path.display()
                );
            }
        }
    }
}

/// `command` followed by `--name value` for each option that has a value.
pub(super) fn command_words(command: &[&str], options: &[(&str, Option<&str>)]) -> Vec<String> {
    let mut words: Vec<String> = command.iter().map(|w| (*w).to_owned()).collect();
    for (name, value) in options {
        if let Some(value) = value {
            words.push(format!("--{name}"));
            words.push((*value).to_owned());
        }
    }
    words
}

/// `1 delivery`, `2 deliveries`.
pub(super) fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `word` as one POSIX shell word: as is when it holds only characters a
/// shell leaves alone, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

pub(super) fn secret_from_env(var: &str) -> Result<String> {
    match std::env::var(var) {
        Ok(value) if value.is_empty() => Err(Failure::usage(format!(
            "environment variable {var} is empty: it holds no secret"
        ))),
        Ok(value) => Ok(value),
        Err(_) => Err(Failure::usage(format!(
            "environment variable {var} is not set (or not UTF-8)"
        ))),
    }
}

pub(super) fn secret_from_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    warn_if_shared(path);
    Ok(text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_owned())
}

/// The lines of a file, or of standard input for `-`.
pub(super) fn input(path: &Path) -> Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    if path.is_dir() {
        return Err(Failure::usage(format!(
            "cannot read {}: it is a directory",
            path.display()
        )));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(Box::new(BufReader::new(file)))
}

/// All of `path`'s bytes, or standard input's for `-`.
pub(super) fn read_input(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    input(path)?
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(bytes)
}

/// Reads one line; a line that is not UTF-8 is a validation error of that line.
pub(super) fn next_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
) -> Result<Option<Result<String, Error>>> {
    buf.clear();
    let n = reader
        .read_until(b'\n', buf)
        .map_err(|e| Failure::usage(format!("cannot read the input: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(match std::str::from_utf8(buf) {
        // A byte order mark (some editors write one) is not part of the JSON.
        Ok(text) => Ok(text
            .strip_prefix('\u{feff}')
            .unwrap_or(text)
            .trim_end_matches(['\n', '\r'])
            .to_owned()),
        Err(e) => Err(Error::Validation(walletlog::ValidationError::new(
            "event",
            format!(
                "the line is not UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        ))),
    }))
}

pub(super) fn print_json(value: &Value) {
    println!("{value}");
}

pub(super) fn outcome(r: &IngestResult) -> String {
    match r.matched_on() {
        None => "created".into(),
        Some(key) => format!("duplicate ({})", key.as_str()),
    }
}

pub(super) fn event_cells(e: &WalletTransactionEvent) -> Vec<String> {
    vec![
        e.occurred_at.to_string(),
        e.wallet_id.to_string(),
        e.event_type.as_str().to_owned(),
        e.amount.to_string(),
        e.currency.to_string(),
        e.provider.to_string(),
        e.provider_event_id
            .as_ref()
            .map_or("-".into(), |k| k.to_string()),
        e.sequence.to_string(),
    ]
}

pub(super) const EVENT_HEADER: [&str; 8] = [
    "OCCURRED_AT",
    "WALLET",
    "TYPE",
    "AMOUNT",
    "CURRENCY",
    "PROVIDER",
    "PROVIDER_EVENT_ID",
    "SEQ",
];

pub(super) fn print_results(results: &[IngestResult]) {
    let mut header = vec!["OUTCOME"];
    header.extend(EVENT_HEADER);
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            let mut row = vec![outcome(r)];
            row.extend(event_cells(&r.event));
            row
        })
        .collect();
    table::print(&header, &rows, &["AMOUNT", "SEQ"]);
}
