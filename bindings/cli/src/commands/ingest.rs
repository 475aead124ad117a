//! `walletlog ingest`: one event a line, stopping at the first refused line.

use std::path::Path;

use serde_json::json;
use walletlog::json as wljson;

use super::{input, next_line, open, outcome, print_json};
use crate::failure::Failure;
use crate::{Global, Result};

pub(super) fn ingest(g: &Global, file: &Path) -> Result<u8> {
    let mut reader = input(file)?;
    let ledger = open(g, true)?;
    let (mut created, mut duplicates, mut number) = (0u64, 0u64, 0usize);
    let stored = each_line(
        g,
        &ledger,
        &mut *reader,
        &mut created,
        &mut duplicates,
        &mut number,
    );
    if !g.json {
        match &stored {
            Ok(()) => println!("{created} created, {duplicates} duplicate"),
            // What the lines before the refused one did stays done.
            Err(Failure::Line(..)) => {
                println!("{created} created, {duplicates} duplicate before line {number}")
            }
            Err(_) => println!("{created} created, {duplicates} duplicate before the input failed"),
        }
    }
    stored.map(|()| 0)
}

/// Ingests line after line, counting, until the input ends or a line is
/// refused (`number` is then that line's).
fn each_line(
    g: &Global,
    ledger: &walletlog::Ledger,
    reader: &mut dyn std::io::BufRead,
    created: &mut u64,
    duplicates: &mut u64,
    number: &mut usize,
) -> Result<()> {
    let mut buf = Vec::new();
    while let Some(line) = next_line(reader, &mut buf)? {
        *number += 1;
        let number = *number;
        let line = line.map_err(|e| Failure::Line(number, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = wljson::parse_event(&line).map_err(|e| Failure::Line(number, e.into()))?;
        let result = ledger
            .ingest(&event)
            .map_err(|e| Failure::Line(number, e))?;
        if result.created() {
            *created += 1;
        } else {
            *duplicates += 1;
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
    Ok(())
}
