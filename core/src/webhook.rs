//! Webhook intake: signature first, then the sandboxed plugin, then the
//! same validation and ingestion as any other input.
//!
//! Secrets stay here, on the host: a plugin never sees one, and none is
//! ever logged or returned in an error.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::domain::{
    AttemptKind, Delivery, DeliveryId, Error, InboxQuery, IngestResult, NewEvent, Order,
    PluginError, PluginErrorKind, Provider, ReplayReport, ReplaySelection, Result, SignatureError,
    Timestamp, ValidationError, Verdict,
};
use crate::limits::{InboxLimits, PluginLimits, PAGE_EVENTS_MAX};
use crate::metrics::{Metrics, UNKNOWN_PROVIDER};
use crate::plugins::{InstalledPlugin, PluginHost, PluginInfo, Webhook};
use crate::ports::Storage;
use crate::service::{Attempt, Service};
use crate::signature::{self, Secret, SignatureScheme, SignedRequest};
use crate::throttle::Throttle;

/// Refuses `secret` for `info`'s provider when its scheme cannot decode it.
fn unsuitable_secret(info: &PluginInfo, secret: &Secret) -> Result<(), ValidationError> {
    signature::check_secret(&info.signature, secret).map_err(|e| {
        ValidationError::new(
            "secret",
            format!(
                "the secret of provider {} does not suit its plugin's scheme {}: {e}",
                info.provider,
                info.signature.name()
            ),
        )
    })
}

/// Installed plugins and webhook secrets of one ledger.
pub(crate) struct Intake {
    limits: PluginLimits,
    cache_dir: Option<PathBuf>,
    host: Mutex<Option<Arc<PluginHost>>>,
    plugins: RwLock<HashMap<String, Arc<InstalledPlugin>>>,
    secrets: RwLock<HashMap<String, Secret>>,
    unsigned: RwLock<HashSet<String>>,
    inbox: InboxLimits,
    /// Receipts stored by this process, for retention's schedule.
    receipts: AtomicU64,
    /// Refused signatures, logged at most every [`SIGNATURE_LOG_EVERY`].
    signature_log: Throttle,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl Intake {
    pub(crate) fn new(
        limits: PluginLimits,
        cache_dir: Option<PathBuf>,
        inbox: InboxLimits,
    ) -> Self {
        Intake {
            limits,
            cache_dir,
            host: Mutex::new(None),
            plugins: RwLock::new(HashMap::new()),
            secrets: RwLock::new(HashMap::new()),
            unsigned: RwLock::new(HashSet::new()),
            inbox,
            receipts: AtomicU64::new(0),
            signature_log: Throttle::new(SIGNATURE_LOG_EVERY),
        }
    }

    pub(crate) fn inbox_limits(&self) -> &InboxLimits {
        &self.inbox
    }

    /// The engine, started on first use.
    fn host(&self) -> Result<Arc<PluginHost>, PluginError> {
        let mut slot = self.host.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = slot.as_ref() {
            return Ok(h.clone());
        }
        let host = Arc::new(PluginHost::new(
            self.limits.clone(),
            self.cache_dir.clone(),
        )?);
        *slot = Some(host.clone());
        Ok(host)
    }

    pub(crate) fn install(&self, wasm: &[u8]) -> Result<PluginInfo> {
        let plugin = self.host()?.install(wasm)?;
        let info = plugin.info.clone();
        if info.signature == SignatureScheme::None && !read(&self.unsigned).contains(&info.provider)
        {
            return Err(PluginError::new(
                PluginErrorKind::Refused,
                format!(
                    "the plugin declares no signature scheme: declare provider {0}'s \
                     scheme in the plugin, or allow unsigned webhooks for {0} \
                     deliberately (allow_unsigned) before installing it",
                    info.provider
                ),
            )
            .into());
        }
        // A secret set before its plugin is checked now, as it would have
        // been had the plugin come first. Locks in one order, plugins then
        // secrets (as `set_secret` takes them), so that an install and a
        // secret set at once cannot both pass unchecked against each other.
        let mut plugins = write(&self.plugins);
        if let Some(secret) = read(&self.secrets).get(&info.provider) {
            unsuitable_secret(&info, secret)?;
        }
        plugins.insert(info.provider.clone(), Arc::new(plugin));
        drop(plugins);
        tracing::info!(
            target: "walletlog::plugins",
            provider = %info.provider,
            version = %info.version,
            signature = info.signature.name(),
            "plugin installed"
        );
        Ok(info)
    }

    /// Refuses a secret no delivery could be verified with: an empty one,
    /// or, when the provider's plugin is installed, one its scheme cannot
    /// decode (not base64 after `whsec_`, not hex, ...). Installing a
    /// plugin checks a secret set before it the same way.
    pub(crate) fn set_secret(&self, provider: &str, secret: Secret) -> Result<()> {
        let provider = Provider::new(provider)?;
        if secret.is_empty() {
            return Err(ValidationError::new("secret", "is empty").into());
        }
        // Plugins then secrets, the order `install` takes them in.
        let plugins = read(&self.plugins);
        if let Some(installed) = plugins.get(provider.as_str()) {
            unsuitable_secret(&installed.info, &secret)?;
        }
        write(&self.secrets).insert(provider.as_str().to_owned(), secret);
        drop(plugins);
        Ok(())
    }

    pub(crate) fn allow_unsigned(&self, provider: &str) -> Result<()> {
        let provider = Provider::new(provider)?;
        write(&self.unsigned).insert(provider.as_str().to_owned());
        Ok(())
    }

    pub(crate) fn plugin_info(&self, provider: &str) -> Option<PluginInfo> {
        read(&self.plugins).get(provider).map(|p| p.info.clone())
    }

    /// The installed plugin of `provider`.
    fn installed(&self, provider: &str) -> Result<Arc<InstalledPlugin>, PluginError> {
        read(&self.plugins).get(provider).cloned().ok_or_else(|| {
            PluginError::new(
                PluginErrorKind::NotInstalled,
                format!(
                    "no plugin is installed for provider {}",
                    crate::encoding::quoted(provider)
                ),
            )
        })
    }

    /// Runs `webhook` through `plugin` and validates every event it
    /// returns; one without a time is dated by `received_at` (asked only
    /// then: a receipt looks the first receipt up).
    fn normalize(
        &self,
        plugin: &InstalledPlugin,
        webhook: &Webhook,
        received_at: &mut dyn FnMut() -> Result<Timestamp>,
        metrics: &Metrics,
    ) -> Result<Vec<NewEvent>> {
        let host = self.host()?;
        let started = Instant::now();
        let mut fuel = 0;
        let raw = host.normalize_metered(plugin, webhook, &mut fuel);
        if !matches!(&raw, Err(e) if e.kind == PluginErrorKind::RequestTooLarge) {
            metrics.plugin_call(&plugin.info.provider, started.elapsed(), fuel);
        }
        let raw = raw?;
        let received_at = if raw.iter().any(|e| e.occurred_at.is_none()) {
            received_at()?
        } else {
            Timestamp::now()
        };
        let mut events = Vec::with_capacity(raw.len());
        for (i, e) in raw.into_iter().enumerate() {
            let event = e
                .validate(&plugin.info.provider, received_at)
                .map_err(|v| {
                    PluginError::new(
                        PluginErrorKind::InvalidOutput,
                        format!("event {i} is invalid: {v}"),
                    )
                    .for_plugin(format!("{}@{}", plugin.info.provider, plugin.info.version))
                })?;
            events.push(event);
        }
        Ok(events)
    }

    /// Fails closed: a plugin that declares a scheme is always verified,
    /// and refused without a secret, whatever `allow_unsigned` says; one
    /// that declares none is admitted only when its provider was allowed
    /// unsigned deliveries.
    fn verify(&self, info: &PluginInfo, webhook: &Webhook) -> Result<(), SignatureError> {
        if info.signature == SignatureScheme::None {
            return if read(&self.unsigned).contains(&info.provider) {
                Ok(())
            } else {
                Err(SignatureError::Unsigned {
                    provider: info.provider.clone(),
                })
            };
        }
        let secrets = read(&self.secrets);
        let Some(secret) = secrets.get(&info.provider) else {
            return Err(SignatureError::NoSecret {
                provider: info.provider.clone(),
                scheme: info.signature.name(),
            });
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let request = SignedRequest {
            headers: &webhook.headers,
            body: &webhook.body,
            url: webhook.url.as_deref(),
        };
        signature::verify(&info.signature, secret, &request, now)
    }
}

/// Refused signatures are logged at most this often (they are counted
/// always): an unauthenticated sender must not flood the log either.
const SIGNATURE_LOG_EVERY: Duration = Duration::from_secs(10);

impl Intake {
    /// Logs a refused signature unless one was logged less than
    /// [`SIGNATURE_LOG_EVERY`] ago; says how many went unlogged since.
    fn log_refused_signature(&self, provider: &str, error: &SignatureError) {
        if let Some(unlogged) = self.signature_log.due() {
            tracing::warn!(
                target: "walletlog::webhook",
                provider,
                refused = "signature",
                unlogged_since_last = unlogged,
                "webhook refused, not stored: {error}"
            );
        }
    }

    /// Counts a receipt; every `prune_every`-th runs inbox retention.
    fn receipt_due_for_pruning(&self) -> bool {
        let n = self.receipts.fetch_add(1, Ordering::Relaxed) + 1;
        n.is_multiple_of(self.inbox.prune_every.max(1))
    }
}

/// Headers whose values are credentials of the hop, not of the provider's
/// message: stored as [`REDACTED`], never kept for 90 days.
const CREDENTIAL_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// What a credential header's value is stored as.
pub const REDACTED: &str = "<redacted>";

/// A new delivery of `webhook` (the transaction that records it finds a
/// stored one of the same body, if any). Credential headers are redacted.
fn new_delivery(provider: &Provider, webhook: &Webhook) -> Delivery {
    let body_sha256: [u8; 32] = Sha256::digest(&webhook.body).into();
    Delivery {
        sequence: 0,
        delivery_id: DeliveryId::for_body(provider, &body_sha256),
        provider: provider.clone(),
        received_at: Timestamp::now(),
        url: webhook.url.clone(),
        headers: webhook
            .headers
            .iter()
            .map(|(k, v)| {
                let secret = CREDENTIAL_HEADERS.contains(&k.to_ascii_lowercase().as_str());
                (
                    k.clone(),
                    if secret {
                        REDACTED.to_owned()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect(),
        body: Some(webhook.body.clone()),
        body_sha256,
        body_bytes: webhook.body.len() as u64,
        attempt_count: 0,
        attempts: Vec::new(),
    }
}

/// Runs a whole webhook: verify, normalize, validate, then record the
/// delivery in the inbox and ingest its events in one transaction (actor
/// `plugin:<provider>@<version>`, the body's SHA-256 and the delivery
/// audited). Returns the delivery when it was stored.
pub(crate) fn receive<S: Storage>(
    intake: &Intake,
    service: &Service<S>,
    provider: &str,
    webhook: &Webhook,
) -> (Option<Delivery>, Result<Vec<IngestResult>>) {
    let started = Instant::now();
    let metrics = service.metrics();
    let outcome = receive_inner(intake, service, provider, webhook);
    let (delivery, result) = match outcome {
        Ok((d, r)) => (Some(d), r),
        Err(e) => (None, Err(e)),
    };
    if let Some(d) = &delivery {
        service.warn_if_received_ahead(d);
    }
    let verdict = delivery_outcome(&result);
    // Only installed providers name a series: a sender cannot add labels.
    let label = if verdict == "not_installed" {
        UNKNOWN_PROVIDER
    } else {
        provider
    };
    metrics.webhook(label, verdict);
    match &result {
        Err(Error::Signature(e)) => intake.log_refused_signature(provider, e),
        Err(e) => tracing::warn!(
            target: "walletlog::webhook",
            provider,
            outcome = verdict,
            delivery_id = delivery.as_ref().map(|d| d.delivery_id.to_string()),
            duration_us = started.elapsed().as_micros() as u64,
            "webhook refused: {e}"
        ),
        Ok(results) if results.is_empty() => tracing::info!(
            target: "walletlog::webhook",
            provider,
            outcome = "ignored",
            delivery_id = delivery.as_ref().map(|d| d.delivery_id.to_string()),
            "the webhook moves no money"
        ),
        Ok(_) => {}
    }
    if delivery.is_some() && intake.receipt_due_for_pruning() {
        if let Err(e) = service.prune_inbox(&intake.inbox) {
            tracing::warn!(target: "walletlog::inbox", "inbox retention failed: {e}");
        }
    }
    (delivery, result)
}

type Received = (Delivery, Result<Vec<IngestResult>>);

fn receive_inner<S: Storage>(
    intake: &Intake,
    service: &Service<S>,
    provider: &str,
    webhook: &Webhook,
) -> Result<Received> {
    let plugin = intake.installed(provider)?;
    intake.verify(&plugin.info, webhook)?;
    let mut planned = new_delivery(&Provider::new(provider)?, webhook);
    // An event without a time is dated by the delivery's first receipt:
    // looked up only for such an event (a retry of a stored body).
    let mut first_receipt = || -> Result<Timestamp> {
        if let Some(stored) = service.delivery_like(&planned)? {
            planned = stored;
        }
        Ok(planned.received_at)
    };
    let normalized = intake.normalize(&plugin, webhook, &mut first_receipt, service.metrics());
    if let Err(e) = &normalized {
        if Verdict::of_error(e).is_none() {
            // Too large to keep (or to run): refused, not stored.
            return Err(e.clone());
        }
    }
    let attempt = Attempt {
        kind: AttemptKind::Receipt,
        plugin_version: plugin.info.version.clone(),
        plugin_sha256: plugin.content_hash,
        actor: plugin.info.actor(),
    };
    service.record_attempt(planned, &attempt, &normalized)
}

/// Verifies, normalizes and ingests a webhook, as [`receive`] does.
pub(crate) fn ingest<S: Storage>(
    intake: &Intake,
    service: &Service<S>,
    provider: &str,
    webhook: &Webhook,
) -> Result<Vec<IngestResult>> {
    receive(intake, service, provider, webhook).1
}

/// Runs stored deliveries through the plugins installed now. Signatures
/// are not checked again: they were at receipt.
pub(crate) fn replay<S: Storage>(
    intake: &Intake,
    service: &Service<S>,
    selection: &ReplaySelection,
) -> Result<ReplayReport> {
    let by_id = selection.delivery_ids.is_some();
    let ids = match &selection.delivery_ids {
        Some(ids) => {
            if selection.provider.is_some() || selection.verdict.is_some() {
                return Err(ValidationError::new(
                    "delivery_ids",
                    "choose deliveries by id, or by provider and verdict, not both",
                )
                .into());
            }
            // Each delivery once, in the order given.
            let mut seen = HashSet::with_capacity(ids.len());
            ids.iter().copied().filter(|id| seen.insert(*id)).collect()
        }
        None => selected(service, selection)?,
    };
    // Every delivery is found and its plugin installed before any runs;
    // bodies are read again one at a time, as each runs.
    let mut runs = Vec::with_capacity(ids.len());
    let mut skipped = 0;
    for id in &ids {
        let delivery = service.delivery(id)?.ok_or_else(|| Error::NotFound {
            what: format!("delivery {id}"),
        })?;
        if delivery.body.is_none() {
            if by_id {
                return Err(ValidationError::new(
                    "delivery_ids",
                    format!(
                        "delivery {id} cannot be replayed: retention dropped its body \
                         (its events are in the ledger)"
                    ),
                )
                .into());
            }
            skipped += 1;
            continue;
        }
        check_body(&delivery)?;
        let plugin = intake.installed(delivery.provider.as_str())?;
        runs.push((*id, plugin));
    }
    let mut report = ReplayReport {
        skipped,
        ..ReplayReport::default()
    };
    for (id, plugin) in runs {
        let Some(delivery) = service.delivery(&id)? else {
            continue; // deleted by retention meanwhile
        };
        let Some(body) = delivery.body.clone() else {
            report.skipped += 1;
            continue;
        };
        check_body(&delivery)?;
        let webhook = Webhook {
            headers: delivery.headers.clone(),
            body,
            url: delivery.url.clone(),
        };
        let received_at = delivery.received_at;
        let normalized = intake.normalize(
            &plugin,
            &webhook,
            &mut || Ok(received_at),
            service.metrics(),
        );
        let attempt = Attempt {
            kind: AttemptKind::Replay,
            plugin_version: plugin.info.version.clone(),
            plugin_sha256: plugin.content_hash,
            actor: format!("replay:{}", plugin.info.actor()),
        };
        let (stored, outcome) = service.record_attempt(delivery, &attempt, &normalized)?;
        report.replayed += 1;
        for r in outcome.iter().flatten() {
            if r.created() {
                report.created += 1;
            } else {
                report.duplicates += 1;
            }
        }
        let verdict = stored.verdict();
        if !verdict.settled() {
            report.still_failing += 1;
        }
        tracing::info!(
            target: "walletlog::inbox",
            delivery_id = %stored.delivery_id,
            provider = %stored.provider,
            verdict = verdict.as_str(),
            actor = %attempt.actor,
            "delivery replayed"
        );
        report.outcomes.push((stored.delivery_id, verdict));
    }
    Ok(report)
}

/// Refuses to replay a stored body that is not the one whose signature
/// was checked at receipt: a replay checks no signature, so the body's
/// hash, stored beside it, is what vouches for it.
fn check_body(d: &Delivery) -> Result<()> {
    match &d.body {
        Some(body) if Sha256::digest(body).as_slice() != d.body_sha256.as_slice() => {
            Err(Error::Storage(crate::domain::StorageError::new(
                crate::domain::StorageErrorKind::Corrupt,
                format!(
                    "stored delivery {} is damaged: its body does not match the SHA-256 \
                     taken when it was received (altered since), and it was not replayed: \
                     run `audit verify`, and restore the ledger from a backup",
                    d.delivery_id
                ),
            )))
        }
        _ => Ok(()),
    }
}

/// The ids of the deliveries a selection by provider and verdict chooses,
/// oldest first, read before any is replayed: those with the verdict
/// given, or without one every dead letter but a conflict (never, unasked,
/// a delivery that went in: a plugin whose mapping changed could count it
/// again; nor a conflict, which a person must look at first).
fn selected<S: Storage>(
    service: &Service<S>,
    selection: &ReplaySelection,
) -> Result<Vec<DeliveryId>> {
    let verdicts: Vec<Verdict> = match selection.verdict {
        Some(v) => vec![v],
        None => Verdict::ALL
            .into_iter()
            .filter(|v| !v.settled() && *v != Verdict::Conflict)
            .collect(),
    };
    let mut found: Vec<(Timestamp, u64, DeliveryId)> = Vec::new();
    for verdict in verdicts {
        let mut query = InboxQuery::new()
            .order(Order::Asc)
            .limit(PAGE_EVENTS_MAX)?
            .verdict(verdict);
        if let Some(p) = &selection.provider {
            query = query.provider(p.clone());
        }
        let mut page_query = query.clone();
        loop {
            let page = service.inbox(&page_query)?;
            found.extend(
                page.deliveries
                    .iter()
                    .map(|d| (d.received_at, d.sequence, d.delivery_id)),
            );
            match page.next_cursor {
                Some(c) => page_query = query.clone().cursor(&c)?,
                None => break,
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, _, id)| id).collect())
}

/// What became of a delivery, by the stable names of
/// `walletlog_webhook_deliveries_total`'s `outcome` label: the inbox's
/// verdicts, and the refusals it never stores.
pub(crate) fn delivery_outcome(outcome: &Result<Vec<IngestResult>>) -> &'static str {
    match outcome {
        Ok(results) if results.is_empty() => "ignored",
        Ok(_) => "ingested",
        Err(e) => match Verdict::of_error(e) {
            Some(v) => v.as_str(),
            None => match e {
                Error::Signature(_) => "signature_failed",
                Error::Plugin(p) if p.kind == PluginErrorKind::NotInstalled => "not_installed",
                Error::Plugin(p) if p.kind == PluginErrorKind::RequestTooLarge => "too_large",
                Error::Plugin(_) => "plugin_failed",
                _ => "storage_failed",
            },
        },
    }
}
