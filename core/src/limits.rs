//! Every limit walletlog enforces, with its unit, in one place.
//!
//! The contract each one is part of is in `docs/events.md` ("Limits");
//! every face (Rust, JSON, Python, C, the CLI) reads its names and values
//! from here.

use std::time::Duration;

use crate::domain::ValidationError;

/// Longest wallet id, in characters.
pub const WALLET_ID_CHARS_MAX: usize = 128;
/// Longest provider slug, in characters.
pub const PROVIDER_CHARS_MAX: usize = 64;
/// Longest provider event id or idempotency key, in characters.
pub const KEY_CHARS_MAX: usize = 255;
/// Most fractional digits an amount may carry.
pub const AMOUNT_FRACTION_DIGITS_MAX: u32 = 18;
/// Most significant digits an amount may carry.
pub const AMOUNT_SIGNIFICANT_DIGITS_MAX: u32 = 28;
/// Largest serialized metadata object, in bytes.
pub const METADATA_BYTES_MAX: usize = 16 * 1024;
/// Deepest metadata, counting its own object as 1. Far below the JSON
/// reading's 64 levels (`walletlog_plugin::json::DEPTH_MAX`), so that an
/// event exported with its metadata (an event line, a batch of them,
/// inside an HTTP body) always reads back in.
pub const METADATA_DEPTH_MAX: usize = 32;

/// Largest page `list` returns, in events.
pub const PAGE_EVENTS_MAX: usize = 1000;
/// Page size when none is given, in events.
pub const PAGE_EVENTS_DEFAULT: usize = 100;
/// Largest page `changes_since` and `audit_log` return, in events or records.
pub const CHANGES_MAX: usize = 10_000;
/// Most events one `ingest_batch` (one transaction) may carry.
pub const BATCH_EVENTS_MAX: usize = 10_000;
/// Largest JSON text accepted for one event, in bytes.
pub const EVENT_JSON_BYTES_MAX: usize = 64 << 10;

/// How long a SQLite writer waits for another by default.
pub const BUSY_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// The longest busy timeout accepted: one day.
pub const BUSY_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 3600);

/// PostgreSQL connections a ledger keeps open, by default, per process.
pub const POOL_SIZE_DEFAULT: usize = 8;
/// The most PostgreSQL connections one ledger may open.
pub const POOL_SIZE_MAX: usize = 1024;
/// How long a call waits for a free pooled connection by default.
pub const POOL_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// How long opening one PostgreSQL connection may take, unless the
/// location's `connect_timeout` says otherwise.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);

/// Group commit: the most events one group's transaction gathers from
/// concurrent callers, by default. A call larger than this still commits, alone.
pub const GROUP_EVENTS_DEFAULT: usize = 1000;
/// The largest group size accepted.
pub const GROUP_EVENTS_MAX: usize = BATCH_EVENTS_MAX;
/// How long a group's leader waits for more callers by default: about two
/// fsyncs. Only a leader that took over from a committing group waits, and
/// only until the group has as many callers as the last one.
pub const GROUP_WAIT_DEFAULT: Duration = Duration::from_micros(500);
/// The longest group wait accepted.
pub const GROUP_WAIT_MAX: Duration = Duration::from_secs(1);

/// How concurrent `ingest` and `ingest_batch` calls on one ledger are
/// gathered into one transaction and one commit. See `docs/events.md`
/// ("Group commit").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// The most events of one group. A caller whose events would take the
    /// group past it waits for the next one.
    pub max_events: usize,
    /// How long a leader that took over from a committing group waits for
    /// more callers before it writes (until the group has as many callers
    /// as the last one). A caller arriving at an idle ledger never waits:
    /// it commits at once.
    pub max_wait: Duration,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            max_events: GROUP_EVENTS_DEFAULT,
            max_wait: GROUP_WAIT_DEFAULT,
        }
    }
}

impl GroupLimits {
    /// `max_events` within `1..=GROUP_EVENTS_MAX`, `max_wait` at most
    /// [`GROUP_WAIT_MAX`]; the error names the option (`group_max_events`,
    /// `group_max_wait_us`).
    pub fn check(&self) -> Result<(), ValidationError> {
        if !(1..=GROUP_EVENTS_MAX).contains(&self.max_events) {
            return Err(ValidationError::new(
                "group_max_events",
                format!("{} is outside 1..={GROUP_EVENTS_MAX}", self.max_events),
            ));
        }
        if self.max_wait > GROUP_WAIT_MAX {
            return Err(ValidationError::new(
                "group_max_wait_us",
                format!(
                    "{} us is more than the {} us allowed",
                    self.max_wait.as_micros(),
                    GROUP_WAIT_MAX.as_micros()
                ),
            ));
        }
        Ok(())
    }
}

/// How long the webhook inbox keeps deliveries. See `docs/webhooks.md`.
/// A delivery's body is at most the plugins' `request_bytes_max`: a bigger
/// one is refused before the plugin and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxLimits {
    /// Deliveries first received longer ago than this are deleted.
    pub retention: Duration,
    /// The body of an `ingested` delivery is dropped this long after its
    /// first receipt (its events are in the ledger). Failed deliveries keep
    /// theirs for the whole `retention`, to be replayed, and so does one
    /// a replay ingested after this time had passed.
    pub ingested_body_retention: Duration,
    /// The most deliveries kept; beyond it, the oldest are deleted.
    pub deliveries_max: u64,
    /// Retention runs after every this many receipts in one process (and
    /// whenever `prune_inbox` is called).
    pub prune_every: u64,
}

/// The names of [`InboxLimits`] in JSON, Python and C, in their units.
pub const INBOX_LIMIT_NAMES: [&str; 4] = [
    "retention_s",
    "ingested_body_retention_s",
    "deliveries_max",
    "prune_every",
];

impl InboxLimits {
    /// Sets the limit named `name` (see [`INBOX_LIMIT_NAMES`]) to `value`.
    /// An unknown name or a zero is a validation error naming the field.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), crate::ValidationError> {
        let Some(field) = INBOX_LIMIT_NAMES.into_iter().find(|n| *n == name) else {
            return Err(crate::ValidationError::new(
                "inbox_limits",
                format!(
                    "has an unknown limit {}; the limits are {}",
                    crate::encoding::quoted(name),
                    INBOX_LIMIT_NAMES.join(", ")
                ),
            ));
        };
        if value == 0 {
            return Err(crate::ValidationError::new(field, "must be at least 1"));
        }
        match field {
            "retention_s" => self.retention = Duration::from_secs(value),
            "ingested_body_retention_s" => {
                self.ingested_body_retention = Duration::from_secs(value)
            }
            "deliveries_max" => self.deliveries_max = value,
            _ => self.prune_every = value,
        }
        Ok(())
    }
}

impl Default for InboxLimits {
    fn default() -> Self {
        InboxLimits {
            retention: Duration::from_secs(90 * 24 * 3600),
            ingested_body_retention: Duration::from_secs(7 * 24 * 3600),
            deliveries_max: 1_000_000,
            prune_every: 1000,
        }
    }
}

/// The limits every plugin call runs under. See `docs/plugins.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLimits {
    /// Fuel per call (about one unit per instruction; `memory.copy` and
    /// `memory.fill` cost one per byte).
    pub fuel_per_call: u64,
    /// Wall-clock deadline per call, enforced by epoch interruption.
    pub call_timeout: Duration,
    /// Largest linear memory a plugin may grow to, in bytes.
    pub memory_bytes_max: usize,
    /// Largest WebAssembly stack, in bytes.
    pub stack_bytes_max: usize,
    /// Largest request (headers, body and URL) a plugin is sent, in bytes.
    pub request_bytes_max: usize,
    /// Largest output (the sum of the returned strings), in bytes.
    pub output_bytes_max: usize,
    /// Most events one webhook may yield.
    pub events_max: usize,
    /// Most plugin instances alive at once (pooling allocator slots).
    pub instances_max: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            fuel_per_call: 50_000_000,
            call_timeout: Duration::from_millis(500),
            memory_bytes_max: 32 << 20,
            stack_bytes_max: 512 << 10,
            request_bytes_max: 1 << 20,
            output_bytes_max: 1 << 20,
            events_max: 256,
            instances_max: 16,
        }
    }
}

/// One plugin limit as the faces name it: its name, its unit, how to read
/// it and how to set it from a whole number.
pub struct PluginLimitField {
    /// The name in JSON, Python and C (`fuel_per_call`, `call_timeout_ms`, ...).
    pub name: &'static str,
    /// `fuel`, `ms`, `bytes`, `events` or `instances`.
    pub unit: &'static str,
    pub get: fn(&PluginLimits) -> u64,
    /// Refuses a value the field cannot hold, saying why.
    pub set: fn(&mut PluginLimits, u64) -> Result<(), &'static str>,
}

fn size(n: u64) -> Result<usize, &'static str> {
    usize::try_from(n).map_err(|_| "is larger than this platform allows")
}

/// Every plugin limit, in the order documented.
pub const PLUGIN_LIMIT_FIELDS: [PluginLimitField; 8] = [
    PluginLimitField {
        name: "fuel_per_call",
        unit: "fuel",
        get: |l| l.fuel_per_call,
        set: |l, n| {
            l.fuel_per_call = n;
            Ok(())
        },
    },
    PluginLimitField {
        name: "call_timeout_ms",
        unit: "ms",
        get: |l| u64::try_from(l.call_timeout.as_millis()).unwrap_or(u64::MAX),
        set: |l, n| {
            l.call_timeout = Duration::from_millis(n);
            Ok(())
        },
    },
    PluginLimitField {
        name: "memory_bytes_max",
        unit: "bytes",
        get: |l| l.memory_bytes_max as u64,
        set: |l, n| {
            l.memory_bytes_max = size(n)?;
            Ok(())
        },
    },
    PluginLimitField {
        name: "stack_bytes_max",
        unit: "bytes",
        get: |l| l.stack_bytes_max as u64,
        set: |l, n| {
            l.stack_bytes_max = size(n)?;
            Ok(())
        },
    },
    PluginLimitField {
        name: "request_bytes_max",
        unit: "bytes",
        get: |l| l.request_bytes_max as u64,
        set: |l, n| {
            l.request_bytes_max = size(n)?;
            Ok(())
        },
    },
    PluginLimitField {
        name: "output_bytes_max",
        unit: "bytes",
        get: |l| l.output_bytes_max as u64,
        set: |l, n| {
            l.output_bytes_max = size(n)?;
            Ok(())
        },
    },
    PluginLimitField {
        name: "events_max",
        unit: "events",
        get: |l| l.events_max as u64,
        set: |l, n| {
            l.events_max = size(n)?;
            Ok(())
        },
    },
    PluginLimitField {
        name: "instances_max",
        unit: "instances",
        get: |l| u64::from(l.instances_max),
        set: |l, n| {
            l.instances_max = u32::try_from(n).map_err(|_| "is larger than 4294967295")?;
            Ok(())
        },
    },
];

impl PluginLimits {
    /// Sets the limit named `name` (see [`PLUGIN_LIMIT_FIELDS`]) to `value`.
    /// An unknown name, a zero or a value the field cannot hold is a
    /// validation error naming the field.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), crate::ValidationError> {
        let field = PLUGIN_LIMIT_FIELDS
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| {
                crate::ValidationError::new(
                    "plugin_limits",
                    format!(
                        "has an unknown limit {}; the limits are {}",
                        crate::encoding::quoted(name),
                        PLUGIN_LIMIT_FIELDS.map(|f| f.name).join(", ")
                    ),
                )
            })?;
        if value == 0 {
            return Err(crate::ValidationError::new(
                field.name,
                "must be at least 1",
            ));
        }
        (field.set)(self, value).map_err(|why| crate::ValidationError::new(field.name, why))
    }

    /// Every limit by name, in documented order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        PLUGIN_LIMIT_FIELDS
            .iter()
            .map(move |f| (f.name, (f.get)(self)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plugin_limit_round_trips_by_name() {
        let mut limits = PluginLimits::default();
        for (i, field) in PLUGIN_LIMIT_FIELDS.iter().enumerate() {
            limits.set(field.name, 1000 + i as u64).unwrap();
        }
        let read: Vec<_> = limits.entries().collect();
        for (i, (name, value)) in read.into_iter().enumerate() {
            assert_eq!(name, PLUGIN_LIMIT_FIELDS[i].name);
            assert_eq!(value, 1000 + i as u64, "{name}");
        }
        assert_eq!(
            limits.set("instances_max", 0).unwrap_err().field,
            "instances_max"
        );
        assert_eq!(limits.set("bogus", 1).unwrap_err().field, "plugin_limits");
        assert!(limits.set("instances_max", u64::MAX).is_err());
        assert_eq!(
            limits.instances_max, 1007,
            "a refused value changes nothing"
        );
    }
}
