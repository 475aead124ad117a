//! `walletlog export` and `walletlog import`: the logical copy of a ledger,
//! one event a JSON line, that moves history between files and engines.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use walletlog::{json as wljson, Error, IngestResult, NewEvent, BATCH_EVENTS_MAX};

use super::{input, next_line, open, print_json};
use crate::failure::{Failure, EXIT_REFUSED};
use crate::{Global, Result};

/// Lines an import ingests in one transaction.
const BATCH: usize = 500;
const _: () = assert!(BATCH <= BATCH_EVENTS_MAX);

pub(super) fn export(g: &Global, since_sequence: u64) -> Result<u8> {
    const PAGE: usize = walletlog::CHANGES_MAX;
    let ledger = open(g, false)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    // On stderr, when it is a terminal (indicatif checks) and stdout is
    // not: an export shown on the screen is not drawn over.
    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_draw_target(if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        indicatif::ProgressDrawTarget::hidden()
    } else {
        indicatif::ProgressDrawTarget::stderr()
    });
    let started = std::time::Instant::now();
    let mut written = 0u64;
    let mut after = since_sequence;
    loop {
        let events = ledger.changes_since(after, PAGE)?;
        for e in &events {
            writeln!(out, "{}", wljson::event(e))
                .map_err(|e| Failure::usage(format!("cannot write the export: {e}")))?;
        }
        written += events.len() as u64;
        let per_sec = written as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.set_message(format!(
            "{written} events exported ({per_sec:.0}/s), up to sequence {}",
            events.last().map_or(after, |e| e.sequence)
        ));
        progress.tick();
        match events.last() {
            Some(last) if events.len() == PAGE => after = last.sequence,
            _ => break,
        }
    }
    out.flush()
        .map_err(|e| Failure::usage(format!("cannot write the export: {e}")))?;
    progress.finish_and_clear();
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
    fn result(&mut self, line: usize, result: walletlog::Result<IngestResult>) {
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

/// Lines are ingested in batches of [`BATCH`] with [`Ledger::ingest_each`]:
/// one transaction a batch, one result or error per line, so every good
/// line is stored and every bad one is named (and audited once).
pub(super) fn import(g: &Global, file: &Path) -> Result<u8> {
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let mut reader = input(file)?;
    let ledger = open(g, true)?;
    let progress = if file == Path::new("-") {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::new(size)
    };
    progress.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    // Bytes at a readable rate (`2.21 MiB/s`), the time left, events so far.
    if let Ok(style) = indicatif::ProgressStyle::with_template(concat!(
        "{spinner} {wide_bar} {binary_bytes}/{binary_total_bytes} ",
        "{binary_bytes_per_sec}, {eta} left, {msg}"
    )) {
        progress.set_style(style);
    }
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    // The events of the batch, and the line each came from.
    let mut batch: Vec<NewEvent> = Vec::with_capacity(BATCH);
    let mut batch_lines: Vec<usize> = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    let mut number = 0usize;
    let flush = |batch: &mut Vec<NewEvent>, lines: &mut Vec<usize>, tally: &mut Tally| {
        if batch.is_empty() {
            return Ok::<(), Failure>(());
        }
        let results = ledger.ingest_each(batch)?;
        for (line, result) in lines.iter().zip(results) {
            tally.result(*line, result);
        }
        batch.clear();
        lines.clear();
        Ok(())
    };
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
            let per_sec = tally.created as f64 / started.elapsed().as_secs_f64().max(1e-3);
            progress.set_message(format!("{} events created ({per_sec:.0}/s)", tally.created));
        }
    }
    flush(&mut batch, &mut batch_lines, &mut tally)?;
    progress.finish_and_clear();
    // Lines refused at parsing are known before those refused at ingestion.
    tally.refused.sort_by_key(|(line, _)| *line);

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
