//! What an ingestion did.

use super::event::WalletTransactionEvent;
use super::values::MatchedKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// The event was stored.
    Created,
    /// The event was already stored; nothing was written but the audit record.
    Duplicate { matched_on: MatchedKey },
}

/// The outcome and the stored event (the original one, for a duplicate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestResult {
    pub outcome: IngestOutcome,
    pub event: WalletTransactionEvent,
}

impl IngestResult {
    pub fn created(&self) -> bool {
        self.outcome == IngestOutcome::Created
    }

    pub fn duplicate(&self) -> bool {
        !self.created()
    }

    /// `None` for a created event.
    pub fn matched_on(&self) -> Option<MatchedKey> {
        match self.outcome {
            IngestOutcome::Created => None,
            IngestOutcome::Duplicate { matched_on } => Some(matched_on),
        }
    }
}
