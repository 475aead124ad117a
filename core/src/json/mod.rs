//! walletlog's JSON transport: the one place where events, results and
//! queries become JSON text and back, shared by the C binding and the CLI.
//! Parsing builds the domain's raw inputs and calls their one `validate`;
//! rendering gives every value one stable shape.
//!
//! Input is strict: an unknown field, a wrong type or an amount written as a
//! JSON number (which a float could have produced) is a validation error that
//! names the field. Output is stable: amounts are decimal strings, times are
//! RFC 3339 UTC, ids are lower-case UUIDs, hashes lower-case hex.
//!
//! An event object (input and output):
//!
//! ```json
//! {"event_id": "0191f0c2-...", "wallet_id": "w1", "provider": "stripe",
//!  "event_type": "deposit", "amount": "12.34", "currency": "USD",
//!  "occurred_at": "2026-01-02T03:04:05Z", "provider_event_id": "evt_1",
//!  "idempotency_key": null, "metadata": {"k": "v"},
//!  "created_at": "...", "sequence": 1}
//! ```
//!
//! `event_id`, `provider_event_id`, `idempotency_key` and `metadata` are
//! optional on input (at least one of the three keys must be there).
//! `created_at` and `sequence` are assigned by the ledger: they are accepted
//! and ignored on input, so an exported line imports as it is.

mod parse;
mod render;

pub use parse::{
    parse_checkpoints, parse_event, parse_event_for, parse_events, parse_headers,
    parse_inbox_query, parse_list_query, parse_options, parse_replay_selection,
};
#[cfg(feature = "plugins")]
pub use render::plugin_info;
pub use render::{
    audit_record, audit_report, balances, delivery, error, event, face_error, inbox_entry,
    inbox_page, ingest_result, ingest_results, page, plugin_limits, replay_report,
};

pub use crate::limits::EVENT_JSON_BYTES_MAX;
