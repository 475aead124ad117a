//! `walletlog audit verify` and `walletlog backup`.

use std::path::Path;

use serde_json::json;
use walletlog::json as wljson;

use super::{open, open_at, print_json};
use crate::failure::EXIT_AUDIT_DAMAGED;
use crate::{Global, Result};

pub(super) fn verify(g: &Global) -> Result<u8> {
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

pub(super) fn backup(g: &Global, dest: &Path) -> Result<u8> {
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
