//! The public entry point: a [`Ledger`] over any storage adapter.
//!
//! API boundary: this is what every face (the Python module, the C
//! library, the CLI) calls. Nothing outside `core` decides a rule.

use std::fmt;
use std::path::Path;

use crate::adapters::memory::MemoryStorage;
#[cfg(feature = "postgres")]
use crate::adapters::postgres::PostgresStorage;
#[cfg(feature = "sqlite")]
use crate::adapters::sqlite::SqliteStorage;
use crate::config::{Location, Options};
use crate::domain::{
    AuditKey, AuditRecord, AuditReport, Balance, Delivery, DeliveryId, Error, EventId,
    IdempotencyKey, InboxPage, InboxQuery, IngestResult, ListQuery, NewEvent, Page, Provider,
    ProviderEventId, Result, SigningKey, StorageError, StorageErrorKind, Timestamp, VerifyingKey,
    WalletId, WalletTransactionEvent,
};
#[cfg(feature = "plugins")]
use crate::domain::{ReplayReport, ReplaySelection};
#[cfg(feature = "plugins")]
use crate::plugins::{PluginInfo, Webhook};
#[cfg(feature = "plugins")]
use crate::ports::Pruned;
use crate::ports::Storage;
use crate::service::{IngestContext, Service};
#[cfg(feature = "plugins")]
use crate::signature::Secret;
#[cfg(feature = "plugins")]
use crate::webhook::Intake;

/// A wallet transaction ledger. Cheap to share between threads (`&Ledger`
/// is `Send + Sync`); several processes may open the same SQLite file.
pub struct Ledger {
    service: Service<Box<dyn Storage>>,
    #[cfg(feature = "plugins")]
    intake: Intake,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("storage", &self.service.storage().describe())
            .finish()
    }
}

fn no_engine(what: &str) -> Error {
    Error::Storage(StorageError::new(StorageErrorKind::Unsupported, what))
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `location`: `:memory:`, a
    /// SQLite file path, or a `postgresql://` URI (cargo feature `postgres`).
    /// See [`Location`].
    pub fn open(location: impl AsRef<Path>, options: Options) -> Result<Ledger> {
        let location = Location::parse(location.as_ref().as_os_str())?;
        Self::open_location(&location, options)
    }

    /// [`open`](Self::open) with a location already parsed.
    pub fn open_location(location: &Location, options: Options) -> Result<Ledger> {
        options.group.check()?;
        let storage: Box<dyn Storage> = match location {
            Location::Memory => Box::new(MemoryStorage::new()),
            #[cfg(feature = "sqlite")]
            Location::Sqlite(path) => Box::new(SqliteStorage::open(path, options.sqlite.clone())?),
            #[cfg(not(feature = "sqlite"))]
            Location::Sqlite(_) => {
                return Err(no_engine(
                    "this build of walletlog has no SQLite engine (cargo feature sqlite)",
                ))
            }
            #[cfg(feature = "postgres")]
            Location::Postgres(uri) => {
                Box::new(PostgresStorage::open(uri, options.postgres.clone())?)
            }
            #[cfg(not(feature = "postgres"))]
            Location::Postgres(_) => {
                return Err(no_engine(&format!(
                    "{location}: this build of walletlog has no PostgreSQL engine \
                     (cargo feature postgres)"
                )))
            }
        };
        Self::with_storage_and(storage, options)
    }

    /// An empty in-memory ledger with an unkeyed audit chain.
    pub fn in_memory() -> Ledger {
        // A fresh memory store holds no settings that could disagree.
        Self::with_storage_and(Box::new(MemoryStorage::new()), Options::default())
            .unwrap_or_else(|e| unreachable!("a fresh in-memory ledger cannot fail: {e}"))
    }

    /// A ledger over any storage adapter: how a new engine is plugged in.
    pub fn with_storage(storage: Box<dyn Storage>, audit_key: Option<AuditKey>) -> Result<Ledger> {
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
            service: Service::new(storage, options.audit_key, options.group)?,
            #[cfg(feature = "plugins")]
            intake: Intake::new(
                options.plugin_limits,
                options.plugin_cache_dir,
                options.inbox,
            ),
        })
    }

    /// Takes one event in exactly once, as a direct API call (actor `api`).
    pub fn ingest(&self, event: &NewEvent) -> Result<IngestResult> {
        self.service.ingest(event, &IngestContext::api())
    }

    /// Takes a batch (at most [`BATCH_EVENTS_MAX`](crate::BATCH_EVENTS_MAX)
    /// events) in one transaction: all of it, or none and an error naming
    /// the item's index.
    pub fn ingest_batch(&self, events: &[NewEvent]) -> Result<Vec<IngestResult>> {
        self.service.ingest_batch(events, &IngestContext::api())
    }

    /// Takes each event in on its own terms, in one transaction: one result
    /// or error per event, in order. A conflicting event is refused (its
    /// attempt audited once) and an invalid one refused (never reaching
    /// storage) while the others are stored; only a storage failure fails
    /// the call, and then nothing is stored. For imports and other bulk
    /// paths that must name every refused item.
    pub fn ingest_each(&self, events: &[NewEvent]) -> Result<Vec<Result<IngestResult>>> {
        self.service.ingest_each(events, &IngestContext::api())
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

    /// One page of the webhook inbox: deliveries by provider, verdict and
    /// receipt time, bodies left out.
    pub fn inbox(&self, query: &InboxQuery) -> Result<InboxPage> {
        self.service.inbox(query)
    }

    /// One inbox delivery with its headers, body (unless retention pruned
    /// it) and history of attempts.
    pub fn delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>> {
        self.service.delivery(id)
    }

    /// A checkpoint of the audit trail's head now, signed with `key`: a
    /// small text document (`docs/audit.md`) to keep outside the ledger.
    /// `verify_audit_with` later proves the ledger still extends it.
    pub fn audit_checkpoint(&self, key: &SigningKey) -> Result<String> {
        self.service.audit_checkpoint(key)
    }

    /// [`verify_audit`](Self::verify_audit), then that the ledger extends
    /// every checkpoint: signed by `key`, of this ledger, its record here
    /// with its hash. A cut tail, a rollback to an older copy, another
    /// ledger's checkpoint or a bad signature is reported with the first
    /// bad sequence and a reason naming the checkpoint.
    pub fn verify_audit_with(
        &self,
        checkpoints: &[&str],
        key: &VerifyingKey,
    ) -> Result<AuditReport> {
        self.service.verify_audit_with(checkpoints, key)
    }

    /// The ledger's metrics in the OpenMetrics text format, for a
    /// Prometheus scrape: names and labels in `docs/metrics.md`. Counted
    /// by this `Ledger` since it was opened (each process its own).
    pub fn metrics_text(&self) -> String {
        self.service.metrics().text()
    }

    /// Writes a consistent copy of the ledger to a new file at `dest` while
    /// writers keep working; the file appears only once it is complete. An
    /// existing `dest` is refused, never overwritten. Engines without an
    /// online backup (memory) refuse: copy their events with `changes_since`.
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<()> {
        let storage = self.service.storage();
        match storage.backup() {
            Some(b) => b.backup_to(dest.as_ref()),
            None => Err(no_engine(&format!(
                "{} cannot be backed up to a file; copy its events with changes_since \
                 (walletlog export)",
                storage.describe()
            ))),
        }
    }
}

#[cfg(feature = "plugins")]
impl Ledger {
    /// Installs a normalizer plugin (a WebAssembly component of the
    /// `walletlog:normalizer` world) for the provider its `info` names,
    /// replacing any earlier one. Refused: a core module, a component with
    /// any import, another world, invalid `info`, and a plugin declaring no
    /// signature scheme unless unsigned webhooks were allowed for its provider.
    pub fn install_plugin(&self, wasm: &[u8]) -> Result<PluginInfo> {
        let info = self.intake.install(wasm)?;
        self.service.metrics().provider(&info.provider);
        Ok(info)
    }

    /// [`install_plugin`](Self::install_plugin) from a file.
    pub fn install_plugin_file(&self, path: impl AsRef<Path>) -> Result<PluginInfo> {
        let path = path.as_ref();
        let wasm = std::fs::read(path).map_err(|e| {
            Error::Plugin(crate::domain::PluginError::new(
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
    /// A `&str` or `String` will do: `set_webhook_secret("stripe", "whsec_...")`.
    pub fn set_webhook_secret(&self, provider: &str, secret: impl Into<Secret>) -> Result<()> {
        self.intake.set_secret(provider, secret.into())
    }

    /// Admits plugins of `provider` that declare no signature scheme, and
    /// their deliveries unchecked. It never turns off the check of a
    /// declared scheme: without a secret, those deliveries are refused.
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

    /// [`ingest_webhook`](Self::ingest_webhook), also giving the inbox
    /// delivery it was recorded on: `None` when it was refused before the
    /// inbox (a signature refused, no plugin, too large, storage failed).
    pub fn receive_webhook(
        &self,
        provider: &str,
        webhook: &Webhook,
    ) -> (Option<Delivery>, Result<Vec<IngestResult>>) {
        crate::webhook::receive(&self.intake, &self.service, provider, webhook)
    }

    /// Runs stored deliveries through the plugins installed now, exactly
    /// once by the usual dedupe: a delivery refused by an older plugin
    /// creates its events, one already ingested gives duplicates (under a
    /// plugin that keys and dates its events as before). By id, or by
    /// provider and verdict; without a verdict, every dead letter. Every
    /// delivery must be found and its provider's plugin installed, or
    /// nothing runs. Signatures are not checked again (they were at
    /// receipt). Audited with actor `replay:plugin:<provider>@<version>`.
    pub fn replay(&self, selection: &ReplaySelection) -> Result<ReplayReport> {
        crate::webhook::replay(&self.intake, &self.service, selection)
    }

    /// Runs inbox retention now (it also runs every `prune_every` receipts).
    pub fn prune_inbox(&self) -> Result<Pruned> {
        self.service.prune_inbox(self.intake.inbox_limits())
    }
}
