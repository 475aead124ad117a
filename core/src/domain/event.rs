//! The entity: a wallet transaction event, as given and as stored.

use sha2::{Digest, Sha256};

use super::error::ValidationError;
use super::values::{
    Amount, Currency, EventId, EventType, IdempotencyKey, Metadata, Provider, ProviderEventId,
    Timestamp, WalletId,
};

/// A validated event that has not been stored yet. Every field is already
/// valid by construction; `event_id` is generated at ingestion when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Option<EventId>,
    pub wallet_id: WalletId,
    pub provider: Provider,
    pub event_type: EventType,
    pub amount: Amount,
    pub currency: Currency,
    pub provider_event_id: Option<ProviderEventId>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub metadata: Metadata,
    pub occurred_at: Timestamp,
    /// The provider gave no time: `occurred_at` is the delivery's first
    /// receipt (plugin contract 1.1). When the stored event or its replay
    /// is estimated, they are compared without `occurred_at`.
    pub occurred_at_estimated: bool,
}

impl NewEvent {
    /// An event with the required fields; set the optional ones with the
    /// `with_*` methods.
    pub fn new(
        wallet_id: WalletId,
        provider: Provider,
        event_type: EventType,
        amount: Amount,
        currency: Currency,
        occurred_at: Timestamp,
    ) -> Self {
        NewEvent {
            event_id: None,
            wallet_id,
            provider,
            event_type,
            amount,
            currency,
            provider_event_id: None,
            idempotency_key: None,
            metadata: Metadata::empty(),
            occurred_at,
            occurred_at_estimated: false,
        }
    }

    pub fn with_event_id(mut self, id: EventId) -> Self {
        self.event_id = Some(id);
        self
    }

    pub fn with_provider_event_id(mut self, id: ProviderEventId) -> Self {
        self.provider_event_id = Some(id);
        self
    }

    pub fn with_idempotency_key(mut self, key: IdempotencyKey) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    pub fn with_metadata(mut self, metadata: Metadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Refuses an event that carries none of the three keys: it could
    /// never be recognised on a retry, so "exactly once" would silently
    /// become "at least once". Refuses the nil UUID as an id too.
    pub fn check_keys(&self) -> Result<(), ValidationError> {
        // The audit trail writes the nil id where a refused replay matched
        // no stored event: no event may be named by it.
        if self.event_id.is_some_and(|id| id.as_uuid().is_nil()) {
            return Err(ValidationError::new(
                "event_id",
                "the nil UUID (all zeros) names no event: give a real UUID, or none",
            ));
        }
        if self.event_id.is_none()
            && self.provider_event_id.is_none()
            && self.idempotency_key.is_none()
        {
            return Err(ValidationError::new(
                "idempotency_key",
                "the event carries none of event_id, provider_event_id, idempotency_key: give \
                 at least one, so that a retry is recognised instead of stored again",
            ));
        }
        Ok(())
    }
}

/// An event as the ledger stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletTransactionEvent {
    pub event_id: EventId,
    pub wallet_id: WalletId,
    pub provider: Provider,
    pub event_type: EventType,
    pub amount: Amount,
    pub currency: Currency,
    pub provider_event_id: Option<ProviderEventId>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub metadata: Metadata,
    pub occurred_at: Timestamp,
    /// `occurred_at` is the webhook's first receipt: the provider gave none.
    pub occurred_at_estimated: bool,
    /// When the ledger stored it.
    pub created_at: Timestamp,
    /// Ledger-wide, strictly increasing in storage order, from 1.
    pub sequence: u64,
}

impl WalletTransactionEvent {
    /// SHA-256 of the event's canonical content: every field but `sequence`
    /// and `created_at`, which the audit record pins separately. Fields are
    /// length-prefixed, so no two different events share an encoding. An
    /// event with an estimated time is of version 2, which adds the flag;
    /// every other event hashes exactly as version 1 did.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(if self.occurred_at_estimated {
            &b"walletlog.event.v2"[..]
        } else {
            &b"walletlog.event.v1"[..]
        });
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        let amount = self.amount.to_string();
        field(self.event_id.as_bytes());
        field(self.wallet_id.as_str().as_bytes());
        field(self.provider.as_str().as_bytes());
        field(&[self.event_type.code()]);
        field(amount.as_bytes());
        field(self.currency.as_str().as_bytes());
        // A presence byte before each optional key: `None` differs from any text.
        let keys = [
            self.provider_event_id.as_ref().map(|k| k.as_str()),
            self.idempotency_key.as_ref().map(|k| k.as_str()),
        ];
        for key in keys {
            match key {
                None => field(&[0]),
                Some(k) => {
                    field(&[1]);
                    field(k.as_bytes());
                }
            }
        }
        field(self.metadata.as_json().as_bytes());
        field(&self.occurred_at.as_micros().to_be_bytes());
        if self.occurred_at_estimated {
            field(&[1]);
        }
        h.finalize().into()
    }

    /// The money fields (`docs/events.md`, "Conflicts") in which `input` differs from this event.
    pub fn money_fields_differing(&self, input: &NewEvent) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.wallet_id != input.wallet_id {
            fields.push("wallet_id");
        }
        if self.provider != input.provider {
            fields.push("provider");
        }
        if self.provider_event_id != input.provider_event_id {
            fields.push("provider_event_id");
        }
        if self.event_type != input.event_type {
            fields.push("event_type");
        }
        // Amounts are normalized, so equality is numeric equality.
        if self.amount != input.amount {
            fields.push("amount");
        }
        if self.currency != input.currency {
            fields.push("currency");
        }
        // An estimate of a time the provider never gave says nothing that
        // another time could contradict.
        let estimated = self.occurred_at_estimated || input.occurred_at_estimated;
        if self.occurred_at != input.occurred_at && !estimated {
            fields.push("occurred_at");
        }
        fields
    }
}

impl NewEvent {
    /// The event as it would be stored with this id, time and sequence.
    pub fn to_stored(
        &self,
        event_id: EventId,
        created_at: Timestamp,
        sequence: u64,
    ) -> WalletTransactionEvent {
        WalletTransactionEvent {
            event_id,
            wallet_id: self.wallet_id.clone(),
            provider: self.provider.clone(),
            event_type: self.event_type,
            amount: self.amount,
            currency: self.currency.clone(),
            provider_event_id: self.provider_event_id.clone(),
            idempotency_key: self.idempotency_key.clone(),
            metadata: self.metadata.clone(),
            occurred_at: self.occurred_at,
            occurred_at_estimated: self.occurred_at_estimated,
            created_at,
            sequence,
        }
    }
}
