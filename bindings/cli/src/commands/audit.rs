//! `walletlog audit verify|checkpoint|keygen` and `walletlog backup`.

use std::path::{Path, PathBuf};

use serde_json::json;
use walletlog::encoding::hex;
use walletlog::{json as wljson, SigningKey, VerifyingKey};

use super::{count, open, open_at, print_json};
use crate::failure::{Failure, EXIT_AUDIT_DAMAGED};
use crate::{Global, Result};

/// Reads a file whole, as a usage error when it cannot be.
fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))
}

/// A key file's key: its 32 raw bytes (as Python's `ed25519_keypair()`
/// gives them), or 64 hex digits (as `audit keygen` writes them).
fn key_file(path: &Path) -> Result<KeyFile> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    // 32 bytes of hex digits or spaces is a short hex key, refused as
    // such, never taken for a raw one (a random key is all such bytes
    // about once in 2^100).
    let text_like = bytes
        .iter()
        .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if bytes.len() == 32 && !text_like {
        return Ok(KeyFile::Raw(bytes));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(KeyFile::Hex(text)),
        Err(e) => Ok(KeyFile::Raw(e.into_bytes())),
    }
}

enum KeyFile {
    Raw(Vec<u8>),
    Hex(String),
}

impl KeyFile {
    fn verifying(&self) -> Result<VerifyingKey> {
        Ok(match self {
            KeyFile::Raw(b) => VerifyingKey::from_bytes(b)?,
            KeyFile::Hex(t) => VerifyingKey::from_hex(t)?,
        })
    }

    fn signing(&self) -> Result<SigningKey> {
        Ok(match self {
            KeyFile::Raw(b) => SigningKey::from_bytes(b)?,
            KeyFile::Hex(t) => SigningKey::from_hex(t)?,
        })
    }
}

pub(super) fn verify(g: &Global, checkpoints: &[PathBuf], public_key: Option<&Path>) -> Result<u8> {
    let texts = checkpoints
        .iter()
        .map(|p| read_text(p))
        .collect::<Result<Vec<_>>>()?;
    let key = match (public_key, texts.is_empty()) {
        (Some(_), true) => {
            return Err(Failure::usage(
                "--public-key verifies checkpoints: give them with --checkpoint FILE",
            ))
        }
        (Some(p), false) => Some(key_file(p)?.verifying()?),
        (None, true) => None,
        (None, false) => {
            return Err(Failure::usage(
                "--checkpoint needs --public-key FILE: the key that signed the checkpoints",
            ))
        }
    };
    let ledger = open(g, false)?;
    let report = match &key {
        Some(key) => {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            ledger.verify_audit_with(&refs, key)?
        }
        None => ledger.verify_audit()?,
    };
    if g.json {
        print_json(&wljson::audit_report(&report));
    } else if report.ok {
        println!(
            "audit trail ok: {} and {} checked{}",
            count(report.records_checked, "record", "records"),
            count(report.events_checked, "event", "events"),
            match texts.len() {
                0 => String::new(),
                1 => "; it extends the checkpoint".into(),
                n => format!("; it extends all {n} checkpoints"),
            }
        );
    } else {
        println!(
            "AUDIT TRAIL DAMAGED: {} ({} and {} checked)",
            report.reason().unwrap_or_default(),
            count(report.records_checked, "record", "records"),
            count(report.events_checked, "event", "events")
        );
    }
    Ok(if report.ok { 0 } else { EXIT_AUDIT_DAMAGED })
}

/// Prints a checkpoint of the trail's head, signed with the key in `key_file`.
pub(super) fn checkpoint(g: &Global, key_file: &Path) -> Result<u8> {
    let key = self::key_file(key_file)?.signing()?;
    let ledger = open(g, false)?;
    let text = ledger.audit_checkpoint(&key)?;
    if g.json {
        print_json(&json!({ "checkpoint": text }));
    } else {
        print!("{text}");
    }
    Ok(0)
}

/// Writes a new key pair: the signing key (mode 0600) and the public key,
/// both as 64 hex digits. Never over an existing file.
pub(super) fn keygen(g: &Global, signing: &Path, public: &Path) -> Result<u8> {
    for path in [signing, public] {
        if path.exists() {
            return Err(Failure::usage(format!(
                "{} exists; a key file is never overwritten",
                path.display()
            )));
        }
    }
    let key = SigningKey::generate();
    let write = |path: &Path, text: String, private: bool| -> Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        use std::io::Write;
        options
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))
    };
    write(signing, format!("{}\n", hex(&key.to_bytes())), true)?;
    let public_hex = hex(&key.verifying_key().to_bytes());
    write(public, format!("{public_hex}\n"), false)?;
    if g.json {
        print_json(&json!({
            "signing_key_file": signing.display().to_string(),
            "public_key": public_hex,
        }));
    } else {
        println!(
            "signing key written to {} (keep it secret, off the ledger's host); \
             public key {public_hex} written to {}",
            signing.display(),
            public.display()
        );
    }
    Ok(0)
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
            "backed up to {} in {} ms; the copy verifies: {} and {} checked",
            dest.display(),
            elapsed.as_millis(),
            count(report.records_checked, "record", "records"),
            count(report.events_checked, "event", "events")
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
