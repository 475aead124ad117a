//! The public entry point: a [`Ledger`] over any storage adapter.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::adapters::memory::MemoryStorage;
use crate::adapters::sqlite::{Durability, SqliteOptions, SqliteStorage};
use crate::domain::{
    AuditRecord, AuditReport, Balance, EventId, IdempotencyKey, IngestResult, ListQuery, NewEvent,
    Page, Provider, ProviderEventId, Result, Timestamp, WalletId, WalletTransactionEvent,
};
use crate::plugins::{PluginInfo, PluginLimits, Webhook};
use crate::ports::Storage;
use crate::service::{IngestContext, Service};
use crate::signature::Secret;
use crate::webhook::Intake;

/// How a ledger is opened.
#[derive(Clone, Default)]
pub struct Options {
    /// SQLite only: fsync at every commit (`Full`, the default) or not (`Normal`).
    pub durability: Durability,
    /// SQLite only: how long a write waits for another writer. Default 30 s.
    pub busy_timeout: Option<Duration>,
    /// Chain the audit trail with HMAC-SHA256 under this key instead of plain
    /// SHA-256, so that nobody without the key can rewrite it consistently.
    /// A ledger created with a key must always be opened with it.
    pub audit_key: Option<Vec<u8>>,
    /// The limits every plugin call runs under.
    pub plugin_limits: PluginLimits,
    /// Where compiled plugins are cached across processes (in memory only
    /// when `None`).
    pub plugin_cache_dir: Option<PathBuf>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("durability", &self.durability)
            .field("busy_timeout", &self.busy_timeout)
            .field("audit_key", &self.audit_key.as_ref().map(|_| "<redacted>"))
            .field("plugin_limits", &self.plugin_limits)
            .field("plugin_cache_dir", &self.plugin_cache_dir)
            .finish()
    }
}

/// A wallet transaction ledger. Cheap to share between threads (`&Ledger`
/// is `Send + Sync`); several processes may open the same SQLite file.
pub struct Ledger {
    service: Service<Box<dyn Storage>>,
    intake: Intake,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("storage", &self.service.storage().describe())
            .finish()
    }
}

impl Ledger {
    /// Opens (creating if needed) the SQLite ledger at `path`. The path
    /// `:memory:` gives an in-memory ledger instead.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Ledger> {
        let path = path.as_ref();
        if path == Path::new(":memory:") {
            return Self::with_storage_and(Box::new(MemoryStorage::new()), options);
        }
        let defaults = SqliteOptions::default();
        let storage = SqliteStorage::open(
            path,
            SqliteOptions {
                durability: options.durability,
                busy_timeout: options.busy_timeout.unwrap_or(defaults.busy_timeout),
                ..defaults
            },
        )?;
        Self::with_storage_and(Box::new(storage), options)
    }

    /// An empty in-memory ledger with an unkeyed audit chain.
    pub fn in_memory() -> Ledger {
        Ledger {
            // A fresh memory store has no settings that could disagree with the key.
            service: Service::new(Box::new(MemoryStorage::new()) as Box<dyn Storage>, None)
                .unwrap_or_else(|e| unreachable!("a fresh in-memory ledger cannot fail: {e}")),
            intake: Intake::new(PluginLimits::default(), None),
        }
    }

    /// A ledger over any storage adapter.
    pub fn with_storage(storage: Box<dyn Storage>, audit_key: Option<Vec<u8>>) -> Result<Ledger> {
        Self::with_storage_and(
            storage,
            Options {
                audit_key,
                ..Options::default()
            },
        )
    }

    fn with_storage_and(storage: Box<dyn Storage>, options: Options) -> Result<Ledger> {
        Ok(Ledger {
            service: Service::new(storage, options.audit_key)?,
            intake: Intake::new(options.plugin_limits, options.plugin_cache_dir),
        })
    }

    /// Takes one event in exactly once, as a direct API call (actor `api`).
    pub fn ingest(&self, event: &NewEvent) -> Result<IngestResult> {
        self.service.ingest(event, &IngestContext::api())
    }

    /// Takes one event in, recording `ctx`'s actor and webhook body hash.
    pub fn ingest_with(&self, event: &NewEvent, ctx: &IngestContext) -> Result<IngestResult> {
        self.service.ingest(event, ctx)
    }

    /// Takes a batch in one transaction: all of it, or none and an error
    /// naming the item's index.
    pub fn ingest_batch(&self, events: &[NewEvent]) -> Result<Vec<IngestResult>> {
        self.service.ingest_batch(events, &IngestContext::api())
    }

    /// A batch with `ctx`'s actor and webhook body hash.
    pub fn ingest_batch_with(
        &self,
        events: &[NewEvent],
        ctx: &IngestContext,
    ) -> Result<Vec<IngestResult>> {
        self.service.ingest_batch(events, ctx)
    }

    pub fn get(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
        self.service.get(id)
    }

    pub fn get_by_provider_event_id(
        &self,
        provider: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>> {
        self.service.get_by_provider_event_id(provider, id)
    }

    pub fn get_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<WalletTransactionEvent>> {
        self.service.get_by_idempotency_key(key)
    }

    /// One page of a wallet's history.
    pub fn list(&self, query: &ListQuery) -> Result<Page> {
        self.service.list(query)
    }

    /// The wallet's balance per currency (sorted by currency) over its events
    /// with `occurred_at <= as_of`, or all of them.
    pub fn balance(&self, wallet: &WalletId, as_of: Option<Timestamp>) -> Result<Vec<Balance>> {
        self.service.balance(wallet, as_of)
    }

    /// Events stored after `sequence`, in storage order, at most `limit` (1..=10000).
    pub fn changes_since(
        &self,
        sequence: u64,
        limit: usize,
    ) -> Result<Vec<WalletTransactionEvent>> {
        self.service.changes_since(sequence, limit)
    }

    /// Audit records after `sequence`, at most `limit` (1..=10000).
    pub fn audit_log(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        self.service.audit_log(sequence, limit)
    }

    /// Recomputes the audit chain, every event's fingerprint and every stored
    /// balance, and reports the first thing altered, deleted or inserted.
    pub fn verify_audit(&self) -> Result<AuditReport> {
        self.service.verify_audit()
    }

    /// Writes a consistent copy of the ledger to a new file at `dest`, with
    /// SQLite's online backup: writers keep working meanwhile, and the file
    /// appears only once it is complete. An existing `dest` is refused; an
    /// in-memory ledger cannot be backed up this way.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<()> {
        self.service.storage().backup(dest.as_ref())
    }

    /// Installs a normalizer plugin (a WebAssembly component of the
    /// `walletlog:normalizer` world) for the provider its `info` names,
    /// replacing any earlier one. Refused: a core module, a component with
    /// any import, another world, invalid `info`, and a plugin declaring no
    /// signature scheme unless unsigned webhooks were allowed for its provider.
    pub fn install_plugin(&self, wasm: &[u8]) -> Result<PluginInfo> {
        self.intake.install(wasm)
    }

    /// [`install_plugin`](Self::install_plugin) from a file.
    pub fn install_plugin_file(&self, path: impl AsRef<Path>) -> Result<PluginInfo> {
        let path = path.as_ref();
        let wasm = std::fs::read(path).map_err(|e| {
            crate::domain::Error::Plugin(crate::domain::PluginError::new(
                crate::domain::PluginErrorKind::Refused,
                format!("cannot read {}: {e}", path.display()),
            ))
        })?;
        self.install_plugin(&wasm)
    }

    /// The installed plugin of `provider`, if any.
    pub fn plugin(&self, provider: &str) -> Option<PluginInfo> {
        self.intake.plugin_info(provider)
    }

    /// The secret `provider`'s webhooks are verified with. It never leaves
    /// the host: not to plugins, logs, errors or the database.
    pub fn set_webhook_secret(&self, provider: &str, secret: Secret) -> Result<()> {
        self.intake.set_secret(provider, secret)
    }

    /// Accepts `provider`'s webhooks without a signature check when no
    /// secret is configured (and plugins that declare no scheme).
    pub fn allow_unsigned(&self, provider: &str) -> Result<()> {
        self.intake.allow_unsigned(provider)
    }

    /// Verifies a webhook's signature, normalizes it in the provider's
    /// sandboxed plugin, validates every event, and ingests them all in one
    /// transaction (actor `plugin:<provider>@<version>`, the body's SHA-256
    /// audited). A replayed webhook is a duplicate; one that moves no money
    /// yields no results.
    pub fn ingest_webhook(&self, provider: &str, webhook: &Webhook) -> Result<Vec<IngestResult>> {
        crate::webhook::ingest(&self.intake, &self.service, provider, webhook)
    }
}
