//! The subcommands. Each one translates its arguments into calls on a
//! [`Ledger`] and its results into a table or JSON; the rules are core's.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};
use walletlog::plugins::{PluginHost, PluginLimits};
use walletlog::signature::{HmacSpec, SignatureScheme};
use walletlog::{
    json as wljson, Currency, Error, EventType, IngestResult, Ledger, ListQuery, NewEvent, Order,
    Secret, Timestamp, WalletId, WalletTransactionEvent, Webhook, BATCH_EVENTS_MAX,
};

use crate::failure::{Failure, EXIT_AUDIT_DAMAGED, EXIT_REFUSED};
use crate::{table, AuditCommand, Cli, Command, Global, PluginCommand, Result};

#[derive(Args, Debug)]
pub struct WebhookArgs {
    /// The provider the webhook comes from (its plugin must declare it).
    #[arg(long)]
    provider: String,
    /// The provider's normalizer plugin (.wasm component).
    #[arg(long, value_name = "FILE")]
    plugin: PathBuf,
    /// The raw request body, byte for byte as received.
    body: PathBuf,
    /// A request header, `Name: value`; repeat for several.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// Read the provider's webhook secret from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["secret_file", "unsigned"])]
    secret_env: Option<String>,
    /// Read the provider's webhook secret from this file (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "unsigned")]
    secret_file: Option<PathBuf>,
    /// Accept the webhook with no signature check (for providers that sign nothing).
    #[arg(long)]
    unsigned: bool,
    /// The URL the webhook was delivered to (some schemes sign it).
    #[arg(long)]
    url: Option<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    wallet: String,
    /// Events per page, 1..=1000.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Continue after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// Only these event types; repeat for several.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only events with occurred_at >= this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events with occurred_at < this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only this currency.
    #[arg(long)]
    currency: Option<String>,
    /// `desc` (newest first) or `asc`.
    #[arg(long, default_value = "desc")]
    order: String,
}

pub fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Ingest { file } => ingest(g, &file),
        Command::Webhook(args) => webhook(g, &args),
        Command::History(args) => history(g, &args),
        Command::Balance { wallet, as_of } => balance(g, &wallet, as_of.as_deref()),
        Command::Audit(AuditCommand::Verify) => audit_verify(g),
        Command::Plugin(PluginCommand::Check { file }) => plugin_check(g, &file),
        Command::Export { since_sequence } => export(g, since_sequence),
        Command::Import { file } => import(g, &file),
        Command::Backup { dest } => backup(g, &dest),
    }
}

/// Opens the ledger. Commands that only read refuse to create a new file:
/// a mistyped `--db` must not look like an empty ledger.
fn open(g: &Global, create: bool) -> Result<Ledger> {
    open_at(g, &g.db, create)
}

/// Opens the ledger at `db` with the global options.
fn open_at(g: &Global, db: &Path, create: bool) -> Result<Ledger> {
    let is_memory = db == Path::new(":memory:");
    if !create && !is_memory && !db.exists() {
        return Err(Failure::usage(format!(
            "no ledger at {}; pass --db or set WALLETLOG_DB",
            db.display()
        )));
    }
    let audit_key = match (&g.audit_key_env, &g.audit_key_file) {
        (Some(var), _) => Some(secret_from_env(var)?),
        (None, Some(file)) => Some(secret_from_file(file)?),
        (None, None) => None,
    };
    // The same options parser as the C API: one set of rules and messages.
    let options = wljson::parse_options(
        &json!({"durability": g.durability, "audit_key_hex": audit_key}).to_string(),
    )?;
    Ok(Ledger::open(db, options)?)
}

fn secret_from_env(var: &str) -> Result<String> {
    std::env::var(var).map_err(|_| {
        Failure::usage(format!(
            "environment variable {var} is not set (or not UTF-8)"
        ))
    })
}

fn secret_from_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text)
        .to_owned())
}

/// The lines of a file, or of standard input for `-`.
fn input(path: &Path) -> Result<Box<dyn BufRead>> {
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    Ok(Box::new(BufReader::new(file)))
}

/// Reads one line; a line that is not UTF-8 is a validation error of that line.
fn next_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> Result<Option<Result<String, Error>>> {
    buf.clear();
    let n = reader
        .read_until(b'\n', buf)
        .map_err(|e| Failure::usage(format!("cannot read the input: {e}")))?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(match std::str::from_utf8(buf) {
        Ok(text) => Ok(text.trim_end_matches(['\n', '\r']).to_owned()),
        Err(e) => Err(Error::Validation(walletlog::ValidationError::new(
            "event",
            format!(
                "the line is not UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        ))),
    }))
}

fn print_json(value: &Value) {
    println!("{value}");
}

fn outcome(r: &IngestResult) -> String {
    match r.matched_on() {
        None => "created".into(),
        Some(key) => format!("duplicate ({})", key.as_str()),
    }
}

fn event_cells(e: &WalletTransactionEvent) -> Vec<String> {
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

const EVENT_HEADER: [&str; 8] = [
    "OCCURRED_AT",
    "WALLET",
    "TYPE",
    "AMOUNT",
    "CURRENCY",
    "PROVIDER",
    "PROVIDER_EVENT_ID",
    "SEQ",
];

fn print_results(results: &[IngestResult]) {
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

fn ingest(g: &Global, file: &Path) -> Result<u8> {
    let mut reader = input(file)?;
    let ledger = open(g, true)?;
    let (mut created, mut duplicates, mut number) = (0u64, 0u64, 0usize);
    let mut buf = Vec::new();
    while let Some(line) = next_line(&mut *reader, &mut buf)? {
        number += 1;
        let line = line.map_err(|e| Failure::Line(number, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = wljson::parse_event(&line).map_err(|e| Failure::Line(number, e.into()))?;
        let result = ledger
            .ingest(&event)
            .map_err(|e| Failure::Line(number, e))?;
        if result.created() {
            created += 1;
        } else {
            duplicates += 1;
        }
        if g.json {
            let mut v = wljson::ingest_result(&result);
            v["line"] = json!(number);
            print_json(&v);
        } else {
            println!(
                "line {number}: {} {} {} {} {} (wallet {}, sequence {})",
                outcome(&result),
                result.event.event_id,
                result.event.event_type.as_str(),
                result.event.amount,
                result.event.currency,
                result.event.wallet_id,
                result.event.sequence
            );
        }
    }
    if !g.json {
        println!("{created} created, {duplicates} duplicate");
    }
    Ok(0)
}

fn webhook(g: &Global, a: &WebhookArgs) -> Result<u8> {
    let wasm = std::fs::read(&a.plugin)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", a.plugin.display())))?;
    let body = std::fs::read(&a.body)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", a.body.display())))?;
    let headers = a
        .headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), value.trim_start().to_owned()))
            }
            _ => Err(Failure::usage(format!(
                "--header {h:?} is not `Name: value`"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    let secret = match (&a.secret_env, &a.secret_file) {
        (Some(var), _) => Some(secret_from_env(var)?),
        (None, Some(file)) => Some(secret_from_file(file)?),
        (None, None) => None,
    };
    let ledger = open(g, true)?;
    if a.unsigned {
        ledger.allow_unsigned(&a.provider)?;
    }
    if let Some(secret) = secret {
        ledger.set_webhook_secret(&a.provider, Secret::new(secret))?;
    }
    let info = ledger.install_plugin(&wasm)?;
    if info.provider != a.provider {
        return Err(Failure::usage(format!(
            "{} is the plugin of provider {:?}, not {:?}",
            a.plugin.display(),
            info.provider,
            a.provider
        )));
    }
    let results = ledger.ingest_webhook(
        &a.provider,
        &Webhook {
            headers,
            body,
            url: a.url.clone(),
        },
    )?;
    if g.json {
        print_json(&wljson::ingest_results(&results));
    } else if results.is_empty() {
        println!(
            "{}@{}: the webhook moves no money; nothing to store",
            info.provider, info.version
        );
    } else {
        print_results(&results);
    }
    Ok(0)
}

fn history(g: &Global, a: &HistoryArgs) -> Result<u8> {
    let mut query = ListQuery::new(WalletId::new(a.wallet.as_str())?)
        .limit(a.limit)?
        .order(Order::parse(&a.order)?);
    if !a.types.is_empty() {
        let types = a
            .types
            .iter()
            .map(|t| EventType::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        query = query.event_types(types)?;
    }
    if let Some(t) = &a.since {
        query = query.since(Timestamp::parse_rfc3339("since", t)?)?;
    }
    if let Some(t) = &a.until {
        query = query.until(Timestamp::parse_rfc3339("until", t)?)?;
    }
    if let Some(c) = &a.currency {
        query = query.currency(Currency::new(c.as_str())?);
    }
    // Checked against the whole query, so last.
    if let Some(c) = &a.cursor {
        query = query.cursor(c)?;
    }
    let ledger = open(g, false)?;
    let page = ledger.list(&query)?;
    if g.json {
        print_json(&wljson::page(&page));
        return Ok(0);
    }
    if page.events.is_empty() {
        println!("no events for wallet {}", a.wallet);
    } else {
        let rows: Vec<Vec<String>> = page.events.iter().map(event_cells).collect();
        table::print(&EVENT_HEADER, &rows, &["AMOUNT", "SEQ"]);
    }
    if let Some(cursor) = &page.next_cursor {
        println!("more: walletlog history {} --cursor {cursor}", a.wallet);
    }
    Ok(0)
}

fn balance(g: &Global, wallet: &str, as_of: Option<&str>) -> Result<u8> {
    let wallet_id = WalletId::new(wallet)?;
    let as_of = as_of
        .map(|t| Timestamp::parse_rfc3339("as_of", t))
        .transpose()?;
    let ledger = open(g, false)?;
    let balances = ledger.balance(&wallet_id, as_of)?;
    if g.json {
        print_json(&wljson::balances(&balances));
        return Ok(0);
    }
    if balances.is_empty() {
        println!("no events for wallet {wallet}");
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = balances
        .iter()
        .map(|b| {
            vec![
                b.currency.to_string(),
                b.available.to_string(),
                b.held.to_string(),
                b.total.to_string(),
                b.event_count.to_string(),
                b.last_occurred_at.map_or("-".into(), |t| t.to_string()),
            ]
        })
        .collect();
    table::print(
        &[
            "CURRENCY",
            "AVAILABLE",
            "HELD",
            "TOTAL",
            "EVENTS",
            "LAST_OCCURRED_AT",
        ],
        &rows,
        &["AVAILABLE", "HELD", "TOTAL", "EVENTS"],
    );
    Ok(0)
}

fn audit_verify(g: &Global) -> Result<u8> {
    let ledger = open(g, false)?;
    let report = ledger.verify_audit()?;
    if g.json {
        print_json(&wljson::audit_report(&report));
    } else if report.ok {
        println!(
            "audit trail ok: {} records and {} events checked",
            report.records_checked, report.events_checked
        );
    } else {
        println!(
            "AUDIT TRAIL DAMAGED: {} ({} records and {} events checked)",
            report.reason().unwrap_or_default(),
            report.records_checked,
            report.events_checked
        );
    }
    Ok(if report.ok { 0 } else { EXIT_AUDIT_DAMAGED })
}

fn scheme_text(scheme: &SignatureScheme) -> String {
    match scheme {
        SignatureScheme::None => "none: the host must allow unsigned webhooks for it".into(),
        SignatureScheme::StripeV1 => "stripe-v1 (Stripe-Signature, HMAC-SHA256, timestamped)".into(),
        SignatureScheme::StandardWebhooksV1 => {
            "standard-webhooks-v1 (webhook-signature, HMAC-SHA256, timestamped)".into()
        }
        SignatureScheme::Hmac(HmacSpec {
            algorithm,
            header,
            encoding,
            prefix,
            include_url,
            secret_encoding,
        }) => format!(
            "hmac ({algorithm:?} in header {header}, {encoding:?} digest{}{}, secret as {secret_encoding:?})",
            prefix
                .as_ref()
                .map_or(String::new(), |p| format!(" after {p:?}")),
            if *include_url { ", URL signed" } else { "" },
        ),
    }
}

fn plugin_check(g: &Global, file: &Path) -> Result<u8> {
    let wasm = std::fs::read(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let limits = PluginLimits::default();
    let host = PluginHost::new(limits.clone(), None).map_err(Error::Plugin)?;
    let plugin = host.install(&wasm).map_err(Error::Plugin)?;
    let info = &plugin.info;
    let limits_json = wljson::plugin_limits(&limits);
    if g.json {
        let mut v = wljson::plugin_info(info);
        v["signature_detail"] = json!(scheme_text(&info.signature));
        v["bytes"] = json!(wasm.len());
        v["limits"] = limits_json;
        print_json(&v);
        return Ok(0);
    }
    println!("plugin {} is accepted by the sandbox", file.display());
    let hash: String = plugin
        .content_hash
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let rows = vec![
        vec!["provider".into(), info.provider.clone()],
        vec!["version".into(), info.version.clone()],
        vec!["signature".into(), scheme_text(&info.signature)],
        vec![
            "size".into(),
            format!("{} bytes, sha256 {hash}", wasm.len()),
        ],
        vec!["imports".into(), "none (any import is refused)".into()],
    ];
    table::print(&["FIELD", "VALUE"], &rows, &[]);
    println!();
    println!("every call runs under these limits:");
    let limit_rows: Vec<Vec<String>> = limits_json
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    table::print(&["LIMIT", "VALUE"], &limit_rows, &["VALUE"]);
    Ok(0)
}

fn export(g: &Global, since_sequence: u64) -> Result<u8> {
    const PAGE: usize = 10_000;
    let ledger = open(g, false)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after = since_sequence;
    loop {
        let events = ledger.changes_since(after, PAGE)?;
        for e in &events {
            writeln!(out, "{}", wljson::event(e))
                .map_err(|e| Failure::usage(format!("cannot write the export: {e}")))?;
        }
        match events.last() {
            Some(last) if events.len() == PAGE => after = last.sequence,
            _ => break,
        }
    }
    out.flush()
        .map_err(|e| Failure::usage(format!("cannot write the export: {e}")))?;
    Ok(0)
}

/// What an import did with each line.
#[derive(Default)]
struct Tally {
    lines: u64,
    created: u64,
    duplicate: u64,
    conflicting: u64,
    invalid: u64,
    /// (line, error) of every refused line.
    refused: Vec<(usize, Error)>,
}

impl Tally {
    fn result(&mut self, line: usize, result: Result<IngestResult, Error>) {
        match result {
            Ok(r) if r.created() => self.created += 1,
            Ok(_) => self.duplicate += 1,
            Err(e) => self.refuse(line, e),
        }
    }

    fn refuse(&mut self, line: usize, e: Error) {
        if matches!(e, Error::Conflict(_)) {
            self.conflicting += 1;
        } else {
            self.invalid += 1;
        }
        self.refused.push((line, e));
    }
}

/// Lines are ingested in batches (one transaction each) for speed; a batch
/// that is refused is retried line by line, so that every good line is
/// stored and every bad one is named.
fn import(g: &Global, file: &Path) -> Result<u8> {
    const BATCH: usize = 500;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let mut reader = input(file)?;
    let ledger = open(g, true)?;
    let progress = if file == Path::new("-") {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::new(size)
    };
    progress.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} {wide_bar} {bytes}/{total_bytes} {per_sec} {msg}",
    ) {
        progress.set_style(style);
    }
    let mut tally = Tally::default();
    // The events of the batch, and the line each came from.
    let mut batch: Vec<NewEvent> = Vec::with_capacity(BATCH);
    let mut batch_lines: Vec<usize> = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    let mut number = 0usize;
    let flush =
        |batch: &mut Vec<NewEvent>, lines: &mut Vec<usize>, tally: &mut Tally| -> Result<()> {
            if batch.is_empty() {
                return Ok(());
            }
            match ledger.ingest_batch(batch) {
                Ok(results) => {
                    for r in results {
                        tally.result(0, Ok(r));
                    }
                }
                Err(Error::Storage(e)) => return Err(Error::Storage(e).into()),
                Err(_) => {
                    for (line, event) in lines.iter().zip(batch.iter()) {
                        match ledger.ingest(event) {
                            Err(Error::Storage(e)) => return Err(Error::Storage(e).into()),
                            other => tally.result(*line, other),
                        }
                    }
                }
            }
            batch.clear();
            lines.clear();
            Ok(())
        };
    const { assert!(BATCH <= BATCH_EVENTS_MAX) };
    while let Some(line) = next_line(&mut *reader, &mut buf)? {
        number += 1;
        progress.inc(buf.len() as u64);
        let text = match line {
            Ok(text) => text,
            Err(e) => {
                tally.lines += 1;
                tally.refuse(number, e);
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        tally.lines += 1;
        match wljson::parse_event(&text) {
            Ok(event) => {
                batch.push(event);
                batch_lines.push(number);
            }
            Err(e) => tally.refuse(number, e.into()),
        }
        if batch.len() == BATCH {
            flush(&mut batch, &mut batch_lines, &mut tally)?;
            progress.set_message(format!("{} created", tally.created));
        }
    }
    flush(&mut batch, &mut batch_lines, &mut tally)?;
    progress.finish_and_clear();

    if g.json {
        let refused: Vec<Value> = tally
            .refused
            .iter()
            .map(|(line, e)| {
                let mut v = wljson::error(e);
                v["line"] = json!(line);
                v
            })
            .collect();
        print_json(&json!({
            "lines": tally.lines,
            "created": tally.created,
            "duplicate": tally.duplicate,
            "conflicting": tally.conflicting,
            "invalid": tally.invalid,
            "refused": refused,
        }));
    } else {
        for (line, e) in &tally.refused {
            println!("line {line}: {e}");
        }
        println!(
            "imported {} lines: {} created, {} duplicate, {} conflicting, {} invalid",
            tally.lines, tally.created, tally.duplicate, tally.conflicting, tally.invalid
        );
    }
    Ok(if tally.refused.is_empty() {
        0
    } else {
        EXIT_REFUSED
    })
}

fn backup(g: &Global, dest: &Path) -> Result<u8> {
    let ledger = open(g, false)?;
    let started = std::time::Instant::now();
    ledger.backup(dest)?;
    let elapsed = started.elapsed();
    // The copy is checked the way a restore would use it.
    let report = open_at(g, dest, false)?.verify_audit()?;
    if g.json {
        print_json(&json!({
            "backup": dest.display().to_string(),
            "milliseconds": elapsed.as_millis() as u64,
            "audit": wljson::audit_report(&report),
        }));
    } else if report.ok {
        println!(
            "backed up to {} in {} ms; the copy verifies: {} records and {} events checked",
            dest.display(),
            elapsed.as_millis(),
            report.records_checked,
            report.events_checked
        );
    } else {
        println!(
            "backed up to {}, but the COPY DOES NOT VERIFY: {}",
            dest.display(),
            report.reason().unwrap_or_default()
        );
    }
    Ok(if report.ok { 0 } else { EXIT_AUDIT_DAMAGED })
}
