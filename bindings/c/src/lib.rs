//! `libwalletlog`: walletlog for C, with rustls-ffi's conventions.
//!
//! - Every fallible function returns a `wl_status` (`WL_OK` is 0) and writes
//!   its outputs only on success; on failure `wl_last_error_message()` says
//!   what went wrong on the calling thread.
//! - Complex values cross as UTF-8 JSON (the shapes of `walletlog::json`);
//!   every string handed out is freed with `wl_string_free`.
//! - Every pointer argument is checked: NULL gives `WL_ERR_INVALID_ARGUMENT`.
//!   Text must be UTF-8. No panic unwinds into C: it becomes `WL_ERR_PANIC`.
//! - A `wl_ledger` may be used from several threads at once; closing it while
//!   another thread uses it is undefined behaviour.
//!
//! The header `include/walletlog.h` is generated from this file by cbindgen
//! (`cargo xtask header`) and committed; a test fails when it drifts.

#![allow(non_camel_case_types)]

mod boundary;

use std::ffi::{c_char, c_int, CString};

use boundary::{
    bytes_arg, call, call_void, ledger_arg, opt_str_arg, out_arg, str_arg, write_json,
    write_string, Failure,
};
use walletlog_core::signature::{sign_request, verify_request, HttpRequest};
use walletlog_core::{
    json, EventId, IdempotencyKey, Ledger, Options, Provider, ProviderEventId, Secret, Timestamp,
    WalletId, Webhook,
};

/// The result of every fallible call.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum wl_status {
    /// Success; the outputs were written.
    WL_OK = 0,
    /// A NULL pointer, text that is not UTF-8, or another misuse of the C API.
    WL_ERR_INVALID_ARGUMENT = 1,
    /// The input broke a rule (including malformed JSON); the message names the field.
    WL_ERR_VALIDATION = 2,
    /// A replay disagrees with stored history; nothing was stored.
    WL_ERR_CONFLICT = 3,
    /// A lookup found nothing.
    WL_ERR_NOT_FOUND = 4,
    /// A webhook's signature was missing, malformed, wrong or stale.
    WL_ERR_SIGNATURE = 5,
    /// A plugin was refused, trapped, ran out of fuel, memory or time, or gave bad output.
    WL_ERR_PLUGIN = 6,
    /// Storage failed: I/O, a corrupt or foreign file, a schema too new, a lock held too long.
    WL_ERR_STORAGE = 7,
    /// A bug inside walletlog was caught at the boundary; the call had no effect
    /// it could report. Please report it.
    WL_ERR_PANIC = 8,
}

/// A ledger: an SQLite file, memory, or a PostgreSQL database. Opaque;
/// open with `wl_ledger_open`, close with `wl_ledger_close`.
pub struct wl_ledger {
    inner: Ledger,
}

/// The library version, such as `"0.1.0"`. A static string: do not free it.
#[no_mangle]
pub extern "C" fn wl_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status, such as `"WL_ERR_CONFLICT"`, or `"WL_UNKNOWN_STATUS"`
/// for a value that is none. A static string: do not free it.
#[no_mangle]
pub extern "C" fn wl_status_name(status: c_int) -> *const c_char {
    let name: &'static std::ffi::CStr = match status {
        0 => c"WL_OK",
        1 => c"WL_ERR_INVALID_ARGUMENT",
        2 => c"WL_ERR_VALIDATION",
        3 => c"WL_ERR_CONFLICT",
        4 => c"WL_ERR_NOT_FOUND",
        5 => c"WL_ERR_SIGNATURE",
        6 => c"WL_ERR_PLUGIN",
        7 => c"WL_ERR_STORAGE",
        8 => c"WL_ERR_PANIC",
        _ => c"WL_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

/// The message of the last call on this thread that failed, or `""` when the
/// last call succeeded. Every function returning a `wl_status` (except
/// `wl_last_error_json`) resets it. The pointer stays valid until the next
/// such call on this thread. Do not free it.
#[no_mangle]
pub extern "C" fn wl_last_error_message() -> *const c_char {
    boundary::last_error_message()
}

/// The last error of this thread as JSON, every key present (null when it
/// does not apply): `{"kind": "validation", "code": null, "message": "...",
/// "field": "amount", "reason": "...", "index": null, "key": null,
/// "fields": null, "existing_event_id": null}` (see docs/events.md, "Errors").
/// `kind` is `invalid_argument`, `validation`, `conflict`, `not_found`,
/// `signature`, `plugin`, `storage` or `panic`. Does not reset the last error.
/// Returns `WL_ERR_NOT_FOUND` (writing nothing) when the last call succeeded.
///
/// # Safety
/// `out_json` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wl_last_error_json(out_json: *mut *mut c_char) -> wl_status {
    if out_json.is_null() {
        return wl_status::WL_ERR_INVALID_ARGUMENT;
    }
    match boundary::last_error_json() {
        Some(text) => {
            // SAFETY: checked non-NULL above; writable by the caller's contract.
            unsafe { *out_json = text.into_raw() };
            wl_status::WL_OK
        }
        None => wl_status::WL_ERR_NOT_FOUND,
    }
}

/// Frees a string walletlog handed out. NULL is a no-op.
///
/// # Safety
/// `s` is NULL or a string from walletlog not yet freed.
#[no_mangle]
pub unsafe extern "C" fn wl_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    call_void(|| {
        // SAFETY: made by `CString::into_raw` in this library, by contract.
        drop(unsafe { CString::from_raw(s) });
    });
}

/// Opens (creating if needed) the ledger at `path`: a SQLite file,
/// `":memory:"` for an in-memory ledger, or a `postgresql://` URI.
/// `options_json` may be NULL or
/// `{"durability": "full"|"normal", "busy_timeout_ms": 30000,
///   "pool_size": 8, "pool_timeout_ms": 30000,
///   "group_max_events": 1000, "group_max_wait_us": 500,
///   "audit_key_hex": "...", "plugin_cache_dir": "...", "plugin_limits": {...},
///   "inbox_limits": {...}}`.
/// On success writes a handle to `*out_ledger`; close it with `wl_ledger_close`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `out_ledger` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_open(
    path: *const c_char,
    options_json: *const c_char,
    out_ledger: *mut *mut wl_ledger,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let path = unsafe { str_arg(path, "path") }?;
        let options = unsafe { opt_str_arg(options_json, "options_json") }?;
        let out = unsafe { out_arg(out_ledger, "out_ledger") }?;
        let options = match options {
            Some(text) => json::parse_options(text)?,
            None => Options::default(),
        };
        let inner = Ledger::open(path, options)?;
        *out = Box::into_raw(Box::new(wl_ledger { inner }));
        Ok(())
    })
}

/// Closes a ledger and frees its handle. NULL is a no-op. Closing a handle
/// twice, or while another thread uses it, is undefined behaviour.
///
/// # Safety
/// `ledger` is NULL or a handle from `wl_ledger_open` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_close(ledger: *mut wl_ledger) {
    if ledger.is_null() {
        return;
    }
    call_void(|| {
        // SAFETY: made by `Box::into_raw` in `wl_ledger_open`, by contract.
        drop(unsafe { Box::from_raw(ledger) });
    });
}

/// Ingests one event given as a JSON object. Writes
/// `{"created": bool, "duplicate": bool, "matched_on": null|"event_id"|...,
///   "event": {...}}` to `*out_result_json`. A conflicting replay is
/// `WL_ERR_CONFLICT` and stores nothing.
///
/// # Safety
/// `ledger` is NULL or open; strings are NULL or NUL-terminated; the output is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_ingest_json(
    ledger: *const wl_ledger,
    event_json: *const c_char,
    out_result_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let text = unsafe { str_arg(event_json, "event_json") }?;
        let out = unsafe { out_arg(out_result_json, "out_result_json") }?;
        let event = json::parse_event(text)?;
        let result = ledger.ingest(&event)?;
        write_json(out, &json::ingest_result(&result));
        Ok(())
    })
}

/// Ingests a JSON array of events in one transaction: all are stored, or
/// none, and the error names the item's index. Writes an array of results.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_ingest_batch_json(
    ledger: *const wl_ledger,
    events_json: *const c_char,
    out_results_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let text = unsafe { str_arg(events_json, "events_json") }?;
        let out = unsafe { out_arg(out_results_json, "out_results_json") }?;
        let events = json::parse_events(text)?;
        let results = ledger.ingest_batch(&events)?;
        write_json(out, &json::ingest_results(&results));
        Ok(())
    })
}

/// Writes the event with this id as JSON; `WL_ERR_NOT_FOUND` when there is none.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_get_json(
    ledger: *const wl_ledger,
    event_id: *const c_char,
    out_event_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let id = unsafe { str_arg(event_id, "event_id") }?;
        let out = unsafe { out_arg(out_event_json, "out_event_json") }?;
        let id = EventId::parse(id)?;
        let found = ledger.get(&id)?;
        found_or_not(out, found.as_ref(), || format!("event {id}"))
    })
}

/// Writes the event a provider reported with this id; `WL_ERR_NOT_FOUND` when
/// there is none.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_get_by_provider_event_id_json(
    ledger: *const wl_ledger,
    provider: *const c_char,
    provider_event_id: *const c_char,
    out_event_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let id = unsafe { str_arg(provider_event_id, "provider_event_id") }?;
        let out = unsafe { out_arg(out_event_json, "out_event_json") }?;
        let provider = Provider::new(provider)?;
        let id = ProviderEventId::new(id)?;
        let found = ledger.get_by_provider_event_id(&provider, &id)?;
        found_or_not(out, found.as_ref(), || {
            format!("event {provider}/{}", id.as_str())
        })
    })
}

/// Writes the event stored under this idempotency key; `WL_ERR_NOT_FOUND`
/// when there is none.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_get_by_idempotency_key_json(
    ledger: *const wl_ledger,
    idempotency_key: *const c_char,
    out_event_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let key = unsafe { str_arg(idempotency_key, "idempotency_key") }?;
        let out = unsafe { out_arg(out_event_json, "out_event_json") }?;
        let key = IdempotencyKey::new(key)?;
        let found = ledger.get_by_idempotency_key(&key)?;
        found_or_not(out, found.as_ref(), || {
            format!("event with idempotency key {:?}", key.as_str())
        })
    })
}

fn found_or_not(
    out: &mut *mut c_char,
    found: Option<&walletlog_core::WalletTransactionEvent>,
    what: impl FnOnce() -> String,
) -> Result<(), Failure> {
    match found {
        Some(event) => {
            write_json(out, &json::event(event));
            Ok(())
        }
        None => Err(walletlog_core::Error::NotFound { what: what() }.into()),
    }
}

/// Writes one page of a wallet's history, `{"events": [...], "next_cursor": ...}`,
/// ordered by `(occurred_at, sequence)`, newest first unless asked otherwise.
/// `query_json` may be NULL or `{"limit": 1..=1000, "cursor": "...",
/// "order": "asc"|"desc", "event_types": ["deposit", ...],
/// "since": "RFC 3339" (inclusive), "until": "RFC 3339" (exclusive), "currency": "USD"}`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_list_json(
    ledger: *const wl_ledger,
    wallet_id: *const c_char,
    query_json: *const c_char,
    out_page_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let wallet = unsafe { str_arg(wallet_id, "wallet_id") }?;
        let query = unsafe { opt_str_arg(query_json, "query_json") }?;
        let out = unsafe { out_arg(out_page_json, "out_page_json") }?;
        let query = json::parse_list_query(WalletId::new(wallet)?, query)?;
        let page = ledger.list(&query)?;
        write_json(out, &json::page(&page));
        Ok(())
    })
}

/// Writes a wallet's balance per currency, `{"USD": {"available": "1.00",
/// "held": "0", "total": "1.00", "event_count": 2, "last_occurred_at": "..."}}`,
/// over the events with `occurred_at <= as_of` (an RFC 3339 time), or all
/// events when `as_of` is NULL. A wallet with no events gives `{}`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_balance_json(
    ledger: *const wl_ledger,
    wallet_id: *const c_char,
    as_of: *const c_char,
    out_balances_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let wallet = unsafe { str_arg(wallet_id, "wallet_id") }?;
        let as_of = unsafe { opt_str_arg(as_of, "as_of") }?;
        let out = unsafe { out_arg(out_balances_json, "out_balances_json") }?;
        let wallet = WalletId::new(wallet)?;
        let as_of = as_of
            .map(|t| Timestamp::parse_rfc3339("as_of", t))
            .transpose()?;
        let balances = ledger.balance(&wallet, as_of)?;
        write_json(out, &json::balances(&balances));
        Ok(())
    })
}

/// Writes up to `limit` (1..=10000) events stored after `sequence`, in storage
/// order, as a JSON array: the feed for replication and exports.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_changes_since_json(
    ledger: *const wl_ledger,
    sequence: u64,
    limit: u32,
    out_events_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let out = unsafe { out_arg(out_events_json, "out_events_json") }?;
        let events = ledger.changes_since(sequence, limit as usize)?;
        write_json(
            out,
            &serde_json::Value::Array(events.iter().map(json::event).collect()),
        );
        Ok(())
    })
}

/// Writes up to `limit` (1..=10000) audit records after `sequence` as a JSON array.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_audit_log_json(
    ledger: *const wl_ledger,
    sequence: u64,
    limit: u32,
    out_records_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let out = unsafe { out_arg(out_records_json, "out_records_json") }?;
        let records = ledger.audit_log(sequence, limit as usize)?;
        write_json(
            out,
            &serde_json::Value::Array(records.iter().map(json::audit_record).collect()),
        );
        Ok(())
    })
}

/// Recomputes the audit chain and every event's fingerprint. Writes
/// `{"ok": bool, "records_checked": n, "events_checked": n,
///   "first_bad_sequence": null|n, "reason": null|"..."}`. A damaged trail is
/// reported in the JSON with `WL_OK`, not as an error.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_verify_audit_json(
    ledger: *const wl_ledger,
    out_report_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let out = unsafe { out_arg(out_report_json, "out_report_json") }?;
        let report = ledger.verify_audit()?;
        write_json(out, &json::audit_report(&report));
        Ok(())
    })
}

/// A new Ed25519 key pair for audit checkpoints, each written as 64
/// lower-case hex digits (free both with `wl_string_free`). Keep the
/// signing key secret; the verifying key may be published.
///
/// # Safety
/// Both outputs are non-NULL and writable.
#[no_mangle]
pub unsafe extern "C" fn wl_ed25519_keypair(
    out_signing_key_hex: *mut *mut c_char,
    out_verifying_key_hex: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let signing = unsafe { out_arg(out_signing_key_hex, "out_signing_key_hex") }?;
        let verifying = unsafe { out_arg(out_verifying_key_hex, "out_verifying_key_hex") }?;
        let key = walletlog_core::SigningKey::generate();
        write_string(signing, &walletlog_core::encoding::hex(&key.to_bytes()));
        write_string(
            verifying,
            &walletlog_core::encoding::hex(&key.verifying_key().to_bytes()),
        );
        Ok(())
    })
}

/// Writes a checkpoint of the audit trail's head now, signed with the
/// Ed25519 `signing_key_hex` (64 hex digits): a small text document
/// (`docs/audit.md`) to keep outside the ledger's host.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_audit_checkpoint(
    ledger: *const wl_ledger,
    signing_key_hex: *const c_char,
    out_checkpoint: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let key = unsafe { str_arg(signing_key_hex, "signing_key_hex") }?;
        let out = unsafe { out_arg(out_checkpoint, "out_checkpoint") }?;
        let key = walletlog_core::SigningKey::from_hex(key)?;
        write_string(out, &ledger.audit_checkpoint(&key)?);
        Ok(())
    })
}

/// `wl_ledger_verify_audit_json`, then that the ledger extends every
/// checkpoint of `checkpoints_json` (a JSON array of checkpoint texts),
/// signed by `verifying_key_hex`: a cut tail (`tail_cut`), a rollback
/// (`rolled_back`), another ledger's checkpoint
/// (`checkpoint_other_ledger`) or a bad signature
/// (`checkpoint_bad_signature`) is the report's `problem`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_verify_audit_checkpoints_json(
    ledger: *const wl_ledger,
    checkpoints_json: *const c_char,
    verifying_key_hex: *const c_char,
    out_report_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let checkpoints = unsafe { str_arg(checkpoints_json, "checkpoints_json") }?;
        let key = unsafe { str_arg(verifying_key_hex, "verifying_key_hex") }?;
        let out = unsafe { out_arg(out_report_json, "out_report_json") }?;
        let texts = json::parse_checkpoints(checkpoints)?;
        let key = walletlog_core::VerifyingKey::from_hex(key)?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        let report = ledger.verify_audit_with(&texts, &key)?;
        write_json(out, &json::audit_report(&report));
        Ok(())
    })
}

/// The ledger's metrics, in the OpenMetrics text format a Prometheus
/// scrape takes (names and labels in `docs/metrics.md`), counted by this
/// handle since it was opened. Written to `out_text`, freed with
/// `wl_string_free`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_metrics_text(
    ledger: *const wl_ledger,
    out_text: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let out = unsafe { out_arg(out_text, "out_text") }?;
        write_string(out, &ledger.metrics_text());
        Ok(())
    })
}

/// Installs a normalizer plugin (a WebAssembly component, `wasm_len` bytes)
/// for the provider it names, replacing any earlier one. Writes
/// `{"provider": "...", "version": "...", "signature": "stripe-v1"}`.
/// A component with any import, or that breaks a limit, is `WL_ERR_PLUGIN`.
///
/// # Safety
/// `wasm` is NULL (with `wasm_len` 0) or `wasm_len` readable bytes; otherwise as `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_install_plugin(
    ledger: *const wl_ledger,
    wasm: *const u8,
    wasm_len: usize,
    out_info_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let wasm = unsafe { bytes_arg(wasm, wasm_len, "wasm") }?;
        let out = unsafe { out_arg(out_info_json, "out_info_json") }?;
        let info = ledger.install_plugin(wasm)?;
        write_json(out, &json::plugin_info(&info));
        Ok(())
    })
}

/// Installs the plugin in the file at `path`; as `wl_ledger_install_plugin`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_install_plugin_file(
    ledger: *const wl_ledger,
    path: *const c_char,
    out_info_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let path = unsafe { str_arg(path, "path") }?;
        let out = unsafe { out_arg(out_info_json, "out_info_json") }?;
        let info = ledger.install_plugin_file(path)?;
        write_json(out, &json::plugin_info(&info));
        Ok(())
    })
}

/// Sets the secret a provider's webhooks are verified with (as the provider
/// gives it, such as `whsec_...`). It is kept in memory only and never
/// appears in a message. An empty secret, or one the installed plugin's
/// scheme cannot decode, is `WL_ERR_VALIDATION`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_set_webhook_secret(
    ledger: *const wl_ledger,
    provider: *const c_char,
    secret: *const c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let secret = unsafe { str_arg(secret, "secret") }?;
        ledger.set_webhook_secret(provider, Secret::new(secret))?;
        Ok(())
    })
}

/// Admits plugins of this provider that declare no signature scheme (call
/// it before installing one), and their webhooks unchecked. It never turns
/// off a declared scheme's check: without a secret, those webhooks are
/// refused.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_allow_unsigned(
    ledger: *const wl_ledger,
    provider: *const c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        ledger.allow_unsigned(provider)?;
        Ok(())
    })
}

/// Takes a provider's raw webhook: verifies its signature, normalizes it with
/// the provider's plugin in the sandbox, and ingests the events in one
/// transaction. `headers_json` is `{"Name": "value"}` or `[["Name", "value"], ...]`;
/// `body` is the raw body as received (`body_len` bytes); `url` may be NULL.
/// Writes an array of results (empty when the plugin ignores the webhook).
///
/// # Safety
/// `body` is NULL (with `body_len` 0) or `body_len` readable bytes; otherwise as `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_ingest_webhook(
    ledger: *const wl_ledger,
    provider: *const c_char,
    headers_json: *const c_char,
    body: *const u8,
    body_len: usize,
    url: *const c_char,
    out_results_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let provider = unsafe { str_arg(provider, "provider") }?;
        let headers = unsafe { str_arg(headers_json, "headers_json") }?;
        let body = unsafe { bytes_arg(body, body_len, "body") }?;
        let url = unsafe { opt_str_arg(url, "url") }?;
        let out = unsafe { out_arg(out_results_json, "out_results_json") }?;
        let webhook = Webhook {
            headers: json::parse_headers(headers)?,
            body: body.to_vec(),
            url: url.map(str::to_owned),
        };
        let results = ledger.ingest_webhook(provider, &webhook)?;
        write_json(out, &json::ingest_results(&results));
        Ok(())
    })
}

/// Writes one page of the webhook inbox, `{"entries": [...], "next_cursor":
/// ...}`, newest first unless asked otherwise: every delivery that passed
/// its signature check, with its verdict (`ingested`, `ignored`,
/// `unsupported`, `malformed`, `plugin_failed`, `invalid_output`,
/// `conflict`). `query_json` may be NULL or `{"provider": "stripe",
/// "verdict": "unsupported", "since": "RFC 3339", "until": "RFC 3339",
/// "limit": 1..=1000, "order": "asc"|"desc", "cursor": "..."}`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_inbox_json(
    ledger: *const wl_ledger,
    query_json: *const c_char,
    out_page_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let query = unsafe { opt_str_arg(query_json, "query_json") }?;
        let out = unsafe { out_arg(out_page_json, "out_page_json") }?;
        let page = ledger.inbox(&json::parse_inbox_query(query)?)?;
        write_json(out, &json::inbox_page(&page));
        Ok(())
    })
}

/// Writes one delivery in full: its entry, `url`, `headers`,
/// `body_base64` (null once retention dropped the body), `body_text` and
/// `attempt_history`. An unknown id is `WL_ERR_NOT_FOUND`.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_inbox_delivery_json(
    ledger: *const wl_ledger,
    delivery_id: *const c_char,
    out_delivery_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let id = unsafe { str_arg(delivery_id, "delivery_id") }?;
        let out = unsafe { out_arg(out_delivery_json, "out_delivery_json") }?;
        let id = walletlog_core::DeliveryId::parse(id)?;
        match ledger.delivery(&id)? {
            Some(d) => {
                write_json(out, &json::delivery(&d));
                Ok(())
            }
            None => Err(walletlog_core::Error::NotFound {
                what: format!("delivery {id}"),
            }
            .into()),
        }
    })
}

/// Runs stored deliveries through the plugins installed now, exactly once
/// by dedupe, and writes `{"replayed", "created", "duplicates",
/// "still_failing", "deliveries": [{"delivery_id", "verdict"}]}`.
/// `selection_json` is `{"delivery_ids": ["..."]}` or `{"provider": "...",
/// "verdict": "..."}`; `{}` (or a provider without a verdict) replays the
/// dead letters (`unsupported`, `malformed`, `plugin_failed`,
/// `invalid_output`), never ingested, ignored or conflicting deliveries
/// unless chosen by id or verdict. Signatures are not
/// checked again. Every delivery must exist and its plugin be installed,
/// or nothing runs.
///
/// # Safety
/// As `wl_ledger_ingest_json`.
#[no_mangle]
pub unsafe extern "C" fn wl_ledger_replay_json(
    ledger: *const wl_ledger,
    selection_json: *const c_char,
    out_report_json: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let ledger = unsafe { ledger_arg(ledger) }?;
        let selection = unsafe { str_arg(selection_json, "selection_json") }?;
        let out = unsafe { out_arg(out_report_json, "out_report_json") }?;
        let report = ledger.replay(&json::parse_replay_selection(selection)?)?;
        write_json(out, &json::replay_report(&report));
        Ok(())
    })
}

/// Signs an HTTP request to a walletlog service (request signing version
/// 2): HMAC-SHA256 over `METHOD\nTARGET\nTIMESTAMP\nhex(sha256(body))`,
/// written as lower-case hex. `target` is the request target as sent: the
/// path, and `?` with the query string when there is one. An empty
/// secret (a key anybody can sign with) or a negative timestamp is
/// `WL_ERR_VALIDATION`.
///
/// # Safety
/// Buffers are NULL (with length 0) or readable for their length; strings are
/// NULL or NUL-terminated; the output is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn wl_sign_request(
    secret: *const u8,
    secret_len: usize,
    method: *const c_char,
    target: *const c_char,
    body: *const u8,
    body_len: usize,
    timestamp: i64,
    out_signature: *mut *mut c_char,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let secret = unsafe { bytes_arg(secret, secret_len, "secret") }?;
        let method = unsafe { str_arg(method, "method") }?;
        let target = unsafe { str_arg(target, "target") }?;
        let body = unsafe { bytes_arg(body, body_len, "body") }?;
        let out = unsafe { out_arg(out_signature, "out_signature") }?;
        let request = HttpRequest {
            method,
            target,
            body,
            timestamp,
        };
        let signature = sign_request(secret, &request).map_err(walletlog_core::Error::from)?;
        write_string(out, &signature);
        Ok(())
    })
}

/// Checks a signature made by `wl_sign_request`, and that `timestamp` is
/// within `tolerance_secs` of `now` (unix seconds). `WL_OK` when it holds,
/// `WL_ERR_SIGNATURE` when not (a timestamp before 1970 included: it is
/// the sender's), `WL_ERR_VALIDATION` for the verifier's own mistakes, an
/// empty secret or a negative `now` or tolerance.
///
/// # Safety
/// As `wl_sign_request`.
#[no_mangle]
pub unsafe extern "C" fn wl_verify_request(
    secret: *const u8,
    secret_len: usize,
    method: *const c_char,
    target: *const c_char,
    body: *const u8,
    body_len: usize,
    timestamp: i64,
    signature: *const c_char,
    now: i64,
    tolerance_secs: i64,
) -> wl_status {
    call(|| {
        // SAFETY (all blocks): forwarded from this function's contract.
        let secret = unsafe { bytes_arg(secret, secret_len, "secret") }?;
        let method = unsafe { str_arg(method, "method") }?;
        let target = unsafe { str_arg(target, "target") }?;
        let body = unsafe { bytes_arg(body, body_len, "body") }?;
        let signature = unsafe { str_arg(signature, "signature") }?;
        let request = HttpRequest {
            method,
            target,
            body,
            timestamp,
        };
        verify_request(secret, &request, signature, now, tolerance_secs).map_err(Into::into)
    })
}

/// Panics inside the boundary and returns what any function would then
/// return, `WL_ERR_PANIC`. It exists so that tests can prove no panic
/// crosses into C; it has no other use.
#[cfg(debug_assertions)]
#[no_mangle]
pub extern "C" fn wl_debug_panic() -> wl_status {
    call(|| panic!("wl_debug_panic was called"))
}
