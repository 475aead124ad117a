//! Webhook intake: signature first, then the sandboxed plugin, then the
//! same validation and ingestion as any other input.
//!
//! Secrets stay here, on the host: a plugin never sees one, and none is
//! ever logged or returned in an error.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::domain::{
    Error, IngestResult, NewEvent, PluginError, PluginErrorKind, Provider, Result, SignatureError,
};
use crate::limits::PluginLimits;
use crate::metrics::{Metrics, UNKNOWN_PROVIDER};
use crate::plugins::{InstalledPlugin, PluginHost, PluginInfo, Webhook};
use crate::ports::Storage;
use crate::service::{IngestContext, Service};
use crate::signature::{self, Secret, SignatureScheme, SignedRequest};

/// Installed plugins and webhook secrets of one ledger.
pub(crate) struct Intake {
    limits: PluginLimits,
    cache_dir: Option<PathBuf>,
    host: Mutex<Option<Arc<PluginHost>>>,
    plugins: RwLock<HashMap<String, Arc<InstalledPlugin>>>,
    secrets: RwLock<HashMap<String, Secret>>,
    unsigned: RwLock<HashSet<String>>,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl Intake {
    pub(crate) fn new(limits: PluginLimits, cache_dir: Option<PathBuf>) -> Self {
        Intake {
            limits,
            cache_dir,
            host: Mutex::new(None),
            plugins: RwLock::new(HashMap::new()),
            secrets: RwLock::new(HashMap::new()),
            unsigned: RwLock::new(HashSet::new()),
        }
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
                    "the plugin declares no signature scheme; \
                     allow unsigned webhooks for provider {} first",
                    info.provider
                ),
            )
            .into());
        }
        write(&self.plugins).insert(info.provider.clone(), Arc::new(plugin));
        tracing::info!(
            target: "walletlog::plugins",
            provider = %info.provider,
            version = %info.version,
            signature = info.signature.name(),
            "plugin installed"
        );
        Ok(info)
    }

    pub(crate) fn set_secret(&self, provider: &str, secret: Secret) -> Result<()> {
        let provider = Provider::new(provider)?;
        write(&self.secrets).insert(provider.as_str().to_owned(), secret);
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

    /// Verifies, normalizes, validates: the events a webhook carries.
    pub(crate) fn events(
        &self,
        provider: &str,
        webhook: &Webhook,
        metrics: &Metrics,
    ) -> Result<(Arc<InstalledPlugin>, Vec<NewEvent>)> {
        let plugin = read(&self.plugins).get(provider).cloned().ok_or_else(|| {
            PluginError::new(
                PluginErrorKind::NotInstalled,
                format!(
                    "no plugin is installed for provider {}",
                    crate::encoding::quoted(provider)
                ),
            )
        })?;
        self.verify(&plugin.info, webhook)?;
        let host = self.host()?;
        let started = Instant::now();
        let mut fuel = 0;
        let raw = host.normalize_metered(&plugin, webhook, &mut fuel);
        if !matches!(&raw, Err(e) if e.kind == PluginErrorKind::RequestTooLarge) {
            metrics.plugin_call(&plugin.info.provider, started.elapsed(), fuel);
        }
        let raw = raw?;
        let mut events = Vec::with_capacity(raw.len());
        for (i, e) in raw.into_iter().enumerate() {
            let event = e.into_raw(&plugin.info.provider).validate().map_err(|v| {
                PluginError::new(
                    PluginErrorKind::InvalidOutput,
                    format!("event {i} is invalid: {v}"),
                )
                .for_plugin(format!("{}@{}", plugin.info.provider, plugin.info.version))
            })?;
            events.push(event);
        }
        Ok((plugin, events))
    }

    fn verify(&self, info: &PluginInfo, webhook: &Webhook) -> Result<(), SignatureError> {
        let unsigned_ok = read(&self.unsigned).contains(&info.provider);
        if info.signature == SignatureScheme::None {
            return if unsigned_ok {
                Ok(())
            } else {
                Err(SignatureError::NoSecret {
                    provider: info.provider.clone(),
                })
            };
        }
        let secrets = read(&self.secrets);
        let Some(secret) = secrets.get(&info.provider) else {
            return if unsigned_ok {
                Ok(())
            } else {
                Err(SignatureError::NoSecret {
                    provider: info.provider.clone(),
                })
            };
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

/// Runs a whole webhook: verify, normalize, validate, ingest in one
/// transaction with the plugin as actor and the body's SHA-256 audited.
pub(crate) fn ingest<S: Storage>(
    intake: &Intake,
    service: &Service<S>,
    provider: &str,
    webhook: &Webhook,
) -> Result<Vec<IngestResult>> {
    let started = Instant::now();
    let metrics = service.metrics();
    let outcome = intake
        .events(provider, webhook, metrics)
        .and_then(|(plugin, events)| {
            if events.is_empty() {
                tracing::info!(
                    target: "walletlog::webhook",
                    provider,
                    outcome = "ignored",
                    "the webhook moves no money"
                );
                return Ok(Vec::new());
            }
            let ctx = IngestContext {
                actor: plugin.info.actor(),
                body_sha256: Some(Sha256::digest(&webhook.body).into()),
            };
            // The events go in inside a write this pipeline opens, so that
            // whatever else a delivery records can share the transaction.
            let mut ingestion = service.batch_ingestion(&events, &ctx)?;
            let written = service.write(events.len(), &mut |tx| ingestion.run(tx));
            ingestion.finish(written)?.into_iter().collect()
        });
    let verdict = delivery_outcome(&outcome);
    // Only installed providers name a series: a sender cannot add labels.
    let label = if verdict == "not_installed" {
        UNKNOWN_PROVIDER
    } else {
        provider
    };
    metrics.webhook(label, verdict);
    if let Err(e) = &outcome {
        let kind = match e {
            Error::Signature(_) => "signature",
            Error::Plugin(_) => "plugin",
            _ => "ingest",
        };
        tracing::warn!(
            target: "walletlog::webhook",
            provider,
            refused = kind,
            duration_us = started.elapsed().as_micros() as u64,
            "webhook refused: {e}"
        );
    }
    outcome
}

/// What became of a delivery, by the stable names of
/// `walletlog_webhook_deliveries_total`'s `outcome` label.
pub(crate) fn delivery_outcome(outcome: &Result<Vec<IngestResult>>) -> &'static str {
    match outcome {
        Ok(results) if results.is_empty() => "ignored",
        Ok(_) => "ingested",
        Err(Error::Signature(_)) => "signature_failed",
        Err(Error::Plugin(p)) => match p.kind {
            PluginErrorKind::NotInstalled => "not_installed",
            PluginErrorKind::Unsupported => "unsupported",
            PluginErrorKind::Malformed => "malformed",
            PluginErrorKind::InvalidOutput | PluginErrorKind::OutputTooLarge => "invalid_output",
            PluginErrorKind::RequestTooLarge => "too_large",
            _ => "plugin_failed",
        },
        Err(Error::Conflict(_)) => "conflict",
        // An event the plugin gave that cannot be stored (an overflow).
        Err(Error::Validation(_)) => "invalid_output",
        Err(Error::Storage(_) | Error::NotFound { .. }) => "storage_failed",
    }
}
