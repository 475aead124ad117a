//! The ledger's metrics: one Prometheus registry per [`Ledger`](crate::Ledger),
//! rendered in the OpenMetrics text format (which Prometheus scrapes) by
//! `Ledger::metrics_text`. The names, labels and their values are a
//! contract, listed in `docs/metrics.md`; every name starts with `walletlog_`.
//!
//! Label values come from fixed vocabularies (outcomes, kinds) and from the
//! providers of installed plugins, never from what a request says, so an
//! unauthenticated sender cannot grow the set of series.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::domain::{Error, IngestResult, StorageErrorKind};

/// The provider label of a webhook for a provider with no plugin installed.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// The `outcome` values of `walletlog_ingestions_total`: an answer, or the
/// kind of the error that refused the event.
pub const INGESTION_OUTCOMES: &[&str] =
    &["created", "duplicate", "conflict", "validation", "storage"];

/// The `actor_kind` values of `walletlog_ingestions_total`.
pub const ACTOR_KINDS: &[&str] = &["api", "plugin", "replay", "other"];

/// The `outcome` values of `walletlog_webhook_deliveries_total`.
pub const DELIVERY_OUTCOMES: &[&str] = &[
    "ingested",
    "ignored",
    "signature_failed",
    "not_installed",
    "unsupported",
    "malformed",
    "plugin_failed",
    "invalid_output",
    "too_large",
    "conflict",
    "storage_failed",
];

/// The `kind` values of `walletlog_storage_errors_total`.
pub const STORAGE_ERROR_KINDS: &[StorageErrorKind] = &[
    StorageErrorKind::Io,
    StorageErrorKind::Busy,
    StorageErrorKind::Corrupt,
    StorageErrorKind::SchemaTooNew,
    StorageErrorKind::AuditKeyMismatch,
    StorageErrorKind::Closed,
    StorageErrorKind::Unavailable,
    StorageErrorKind::Unsupported,
    StorageErrorKind::Other,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngestionLabels {
    outcome: &'static str,
    actor_kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StorageErrorLabels {
    kind: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_buckets() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

fn fuel_buckets() -> Histogram {
    // 10 thousand to about 40 billion units of fuel.
    Histogram::new(exponential_buckets(10_000.0, 4.0, 12))
}

/// The metrics of one ledger. Cheap to update from any thread. (A build
/// without plugins registers the webhook series and never counts into them.)
pub struct Metrics {
    registry: Registry,
    ingestions: Family<IngestionLabels, Counter>,
    #[cfg_attr(not(feature = "plugins"), allow(dead_code))]
    webhooks: Family<WebhookLabels, Counter>,
    #[cfg_attr(not(feature = "plugins"), allow(dead_code))]
    plugin_seconds: Histograms<ProviderLabels>,
    #[cfg_attr(not(feature = "plugins"), allow(dead_code))]
    plugin_fuel: Histograms<ProviderLabels>,
    commit_seconds: Histogram,
    commit_events: Histogram,
    storage_errors: Family<StorageErrorLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("walletlog");
        let ingestions = Family::<IngestionLabels, Counter>::default();
        registry.register(
            "ingestions",
            "Events offered for ingestion, by outcome (created, duplicate, or the error kind \
             that refused them) and by who offered them (api, plugin)",
            ingestions.clone(),
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries, by provider and outcome",
            webhooks.clone(),
        );
        let plugin_seconds: Histograms<ProviderLabels> =
            Family::new_with_constructor(seconds_buckets);
        registry.register_with_unit(
            "plugin_call_duration",
            "Wall time of one normalizer plugin call, by provider",
            Unit::Seconds,
            plugin_seconds.clone(),
        );
        let plugin_fuel: Histograms<ProviderLabels> = Family::new_with_constructor(fuel_buckets);
        registry.register(
            "plugin_call_fuel",
            "Fuel one normalizer plugin call consumed, by provider",
            plugin_fuel.clone(),
        );
        let commit_seconds = seconds_buckets();
        registry.register_with_unit(
            "commit_duration",
            "Wall time of one write transaction that committed, from its start (lock wait \
             included) to the end of its commit",
            Unit::Seconds,
            commit_seconds.clone(),
        );
        // 1 to 8192 events.
        let commit_events = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "commit_events",
            "Events offered in one committed write transaction (a group commit's size)",
            commit_events.clone(),
        );
        let storage_errors = Family::<StorageErrorLabels, Counter>::default();
        registry.register(
            "storage_errors",
            "Storage errors, by kind (busy, unavailable, io, corrupt, ...)",
            storage_errors.clone(),
        );
        // Every series of a fixed vocabulary exists from the start, at zero:
        // a rate over a series that appears late misses its first events.
        for &outcome in INGESTION_OUTCOMES {
            for &actor_kind in ACTOR_KINDS {
                let _ = ingestions.get_or_create(&IngestionLabels {
                    outcome,
                    actor_kind,
                });
            }
        }
        for kind in STORAGE_ERROR_KINDS {
            let _ = storage_errors.get_or_create(&StorageErrorLabels {
                kind: kind.as_str(),
            });
        }
        Metrics {
            registry,
            ingestions,
            webhooks,
            plugin_seconds,
            plugin_fuel,
            commit_seconds,
            commit_events,
            storage_errors,
        }
    }

    /// Every metric in the OpenMetrics text format, ending with `# EOF`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// One answer to an offered event, or to a call refused as a whole.
    pub(crate) fn ingestion(&self, actor: &str, answer: Result<&IngestResult, &Error>) {
        let outcome = match answer {
            Ok(r) if r.created() => "created",
            Ok(_) => "duplicate",
            Err(e) => e.kind().as_str(),
        };
        debug_assert!(INGESTION_OUTCOMES.contains(&outcome), "{outcome}");
        self.ingestions
            .get_or_create(&IngestionLabels {
                outcome,
                actor_kind: actor_kind(actor),
            })
            .inc();
    }

    /// Creates `provider`'s delivery series at zero, when its plugin is installed.
    #[cfg_attr(not(feature = "plugins"), allow(dead_code))]
    pub(crate) fn provider(&self, provider: &str) {
        for &outcome in DELIVERY_OUTCOMES {
            let _ = self.webhooks.get_or_create(&WebhookLabels {
                provider: provider.to_owned(),
                outcome,
            });
        }
    }

    /// `provider` must be an installed plugin's, or [`UNKNOWN_PROVIDER`].
    #[cfg_attr(not(feature = "plugins"), allow(dead_code))]
    pub(crate) fn webhook(&self, provider: &str, outcome: &'static str) {
        debug_assert!(DELIVERY_OUTCOMES.contains(&outcome), "{outcome}");
        self.webhooks
            .get_or_create(&WebhookLabels {
                provider: provider.to_owned(),
                outcome,
            })
            .inc();
    }

    #[cfg_attr(not(feature = "plugins"), allow(dead_code))]
    pub(crate) fn plugin_call(&self, provider: &str, took: Duration, fuel: u64) {
        let labels = ProviderLabels {
            provider: provider.to_owned(),
        };
        self.plugin_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.plugin_fuel.get_or_create(&labels).observe(fuel as f64);
    }

    /// A committed write transaction that offered `events` events (0 for
    /// one that records only an audit record, such as a refused replay's:
    /// timed, but not a group size).
    pub(crate) fn commit(&self, took: Duration, events: usize) {
        self.commit_seconds.observe(took.as_secs_f64());
        if events > 0 {
            self.commit_events.observe(events as f64);
        }
    }

    /// Counts `error` if it is a storage error.
    pub(crate) fn error(&self, error: &Error) {
        if let Error::Storage(s) = error {
            self.storage_errors
                .get_or_create(&StorageErrorLabels {
                    kind: s.kind.as_str(),
                })
                .inc();
        }
    }
}

/// The kind of an audit actor: what comes before its first `:`
/// (`plugin:stripe@1.0.0` is a `plugin`), from a fixed set.
fn actor_kind(actor: &str) -> &'static str {
    match actor.split(':').next() {
        Some("api") => "api",
        Some("plugin") => "plugin",
        Some("replay") => "replay",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_kinds_are_a_fixed_set() {
        assert_eq!(actor_kind("api"), "api");
        assert_eq!(actor_kind("plugin:stripe@1.0.0"), "plugin");
        assert_eq!(actor_kind("replay:plugin:stripe@1.0.0"), "replay");
        assert_eq!(actor_kind("anything else"), "other");
    }

    #[test]
    fn the_text_names_every_metric_with_the_prefix() {
        let m = Metrics::new();
        m.commit(Duration::from_micros(300), 3);
        m.webhook("stripe", "ingested");
        m.plugin_call("stripe", Duration::from_micros(80), 123_456);
        let text = m.text();
        for name in [
            "walletlog_webhook_deliveries_total{provider=\"stripe\",outcome=\"ingested\"} 1",
            "walletlog_commit_duration_seconds_count 1",
            "walletlog_commit_events_sum 3.0",
            "walletlog_plugin_call_duration_seconds_count{provider=\"stripe\"} 1",
            "walletlog_plugin_call_fuel_sum{provider=\"stripe\"} 123456.0",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn fixed_vocabularies_start_at_zero() {
        let m = Metrics::new();
        let text = m.text();
        assert!(text.contains("walletlog_storage_errors_total{kind=\"unavailable\"} 0\n"));
        assert!(text.contains(
            "walletlog_ingestions_total{outcome=\"conflict\",actor_kind=\"plugin\"} 0\n"
        ));
        assert!(!text.contains("walletlog_webhook_deliveries_total{"));
        m.provider("stripe");
        assert!(m.text().contains(
            "walletlog_webhook_deliveries_total{provider=\"stripe\",outcome=\"malformed\"} 0\n"
        ));
    }
}
