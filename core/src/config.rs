//! How a ledger is opened: its location, parsed once, and the settings of
//! each engine, which live here rather than in the engines so that every
//! face can build them without naming an engine crate.
//!
//! A location is the same string in every face (Rust, Python, C, the CLI):
//!
//! | location | engine |
//! |---|---|
//! | `:memory:` | the in-memory adapter |
//! | `postgresql://...` or `postgres://...` | PostgreSQL (cargo feature `postgres`) |
//! | anything else | a SQLite file at that path |

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::domain::AuditKey;
use crate::domain::ValidationError;
use crate::encoding::quoted;
pub use crate::limits::GroupLimits;
use crate::limits::{
    InboxLimits, PluginLimits, BUSY_TIMEOUT_DEFAULT, BUSY_TIMEOUT_MAX, CONNECT_TIMEOUT_DEFAULT,
    POOL_SIZE_DEFAULT, POOL_SIZE_MAX, POOL_TIMEOUT_DEFAULT,
};

/// Where a ledger lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `:memory:`: nothing on disk, gone with the process.
    Memory,
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A libpq URI (`postgresql://` or `postgres://`).
    Postgres(String),
}

impl Location {
    /// Reads a location. Only an empty one is refused here; whether the
    /// file or server can be opened is the engine's to say.
    pub fn parse(location: impl AsRef<OsStr>) -> Result<Location, ValidationError> {
        let raw = location.as_ref();
        if raw.is_empty() {
            return Err(ValidationError::new(
                "location",
                "must not be empty: give a file path, \":memory:\" or a postgresql:// URI",
            ));
        }
        if raw == ":memory:" {
            return Ok(Location::Memory);
        }
        if let Some(text) = raw.to_str() {
            let lower = text.get(..13).unwrap_or(text).to_ascii_lowercase();
            if lower.starts_with("postgresql://") || lower.starts_with("postgres://") {
                return Ok(Location::Postgres(text.to_owned()));
            }
        }
        Ok(Location::Sqlite(PathBuf::from(raw)))
    }
}

impl fmt::Display for Location {
    /// For messages: a PostgreSQL URI is shown without its password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory => f.write_str(":memory:"),
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(uri) => f.write_str(&redact_password(uri)),
        }
    }
}

/// `postgresql://user:secret@host/db` as `postgresql://user:***@host/db`,
/// and `?password=secret` (or `sslpassword=`) as `?password=***`.
fn redact_password(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if matches!(k, "password" | "sslpassword") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// How hard a commit tries to survive a power loss.
///
/// On PostgreSQL, `full` is `synchronous_commit = on` (the server's WAL is
/// flushed before the commit is acknowledged) and `normal` is
/// `synchronous_commit = off` (a server crash may lose the last commits,
/// never corrupting the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: the WAL is fsynced at every commit. An
    /// acknowledged event survives a crash of the process or the machine.
    #[default]
    Full,
    /// `synchronous = NORMAL`: no fsync at commit. An acknowledged event
    /// survives a crash of the process, but a power loss may lose the last
    /// commits (never corrupting the file).
    Normal,
}

impl Durability {
    /// Every durability by name, in `parse`'s spelling.
    pub const NAMES: [&'static str; 2] = ["full", "normal"];

    /// `full` or `normal`.
    pub fn parse(text: &str) -> Result<Durability, ValidationError> {
        match text {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(ValidationError::new(
                "durability",
                format!("{} is not \"full\" or \"normal\"", quoted(other)),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
        }
    }
}

/// Settings of the SQLite engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteConfig {
    pub durability: Durability,
    /// How long a writer waits for another writer (thread or process)
    /// before failing with a `busy` storage error. Default 30 s.
    pub busy_timeout: Duration,
    /// Most idle read connections kept open.
    pub readers_max: usize,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            durability: Durability::Full,
            busy_timeout: BUSY_TIMEOUT_DEFAULT,
            readers_max: 8,
        }
    }
}

/// Settings of the PostgreSQL engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    pub durability: Durability,
    /// Most connections this ledger opens (per process). Default 8.
    pub pool_size: usize,
    /// How long a call waits for a free connection before failing with a
    /// `busy` storage error. Default 30 s.
    pub pool_timeout: Duration,
    /// Create the schema and the ledger's tables when they are missing (a
    /// new tenant). Default true; false for a tool that only reads, so that
    /// a mistyped schema is an error (`NotFound`) rather than an empty
    /// ledger, and nothing is created.
    pub create_if_missing: bool,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            durability: Durability::Full,
            pool_size: POOL_SIZE_DEFAULT,
            pool_timeout: POOL_TIMEOUT_DEFAULT,
            create_if_missing: true,
        }
    }
}

impl PostgresConfig {
    /// The pool size within `1..=POOL_SIZE_MAX` and the timeout at most
    /// [`BUSY_TIMEOUT_MAX`].
    pub fn check(&self) -> Result<(), ValidationError> {
        if self.pool_size == 0 || self.pool_size > POOL_SIZE_MAX {
            return Err(ValidationError::new(
                "pool_size",
                format!(
                    "{} is outside 1..={POOL_SIZE_MAX} connections",
                    self.pool_size
                ),
            ));
        }
        if self.pool_timeout > BUSY_TIMEOUT_MAX {
            return Err(ValidationError::new(
                "pool_timeout_ms",
                format!(
                    "{} ms is more than the {} ms allowed",
                    self.pool_timeout.as_millis(),
                    BUSY_TIMEOUT_MAX.as_millis()
                ),
            ));
        }
        Ok(())
    }

    /// How long opening one connection may take when the location does not
    /// say (`connect_timeout`).
    pub const CONNECT_TIMEOUT: Duration = CONNECT_TIMEOUT_DEFAULT;
}

/// How a ledger is opened. Engine settings apply only when the location is
/// of that engine.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Chain the audit trail with HMAC-SHA256 under this key instead of
    /// plain SHA-256, so that nobody without the key can rewrite it
    /// consistently. A ledger created with a key must always be opened with it.
    pub audit_key: Option<AuditKey>,
    /// The SQLite engine's settings.
    pub sqlite: SqliteConfig,
    /// The PostgreSQL engine's settings.
    pub postgres: PostgresConfig,
    /// How concurrent ingestions share a commit (every engine).
    pub group: GroupLimits,
    /// The limits every plugin call runs under.
    pub plugin_limits: PluginLimits,
    /// Where compiled plugins are cached across processes (in memory only
    /// when `None`).
    pub plugin_cache_dir: Option<PathBuf>,
    /// How long the webhook inbox keeps deliveries.
    pub inbox: InboxLimits,
}

/// A busy timeout must be at most [`BUSY_TIMEOUT_MAX`].
pub fn check_busy_timeout(timeout: Duration) -> Result<(), ValidationError> {
    if timeout > BUSY_TIMEOUT_MAX {
        return Err(ValidationError::new(
            "busy_timeout",
            format!(
                "{} ms is more than the {} ms allowed",
                timeout.as_millis(),
                BUSY_TIMEOUT_MAX.as_millis()
            ),
        ));
    }
    Ok(())
}

/// The audit key as a face hands it over.
#[derive(Clone, PartialEq, Eq)]
pub enum RawAuditKey {
    Bytes(Vec<u8>),
    Hex(String),
}

impl fmt::Debug for RawAuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawAuditKey(<redacted>)")
    }
}

/// Ledger options as a face hands them over (JSON, Python, C, the CLI):
/// every field optional, checked by [`RawOptions::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawOptions {
    /// `full` or `normal`, for whichever engine the location names.
    pub durability: Option<String>,
    pub busy_timeout_ms: Option<u64>,
    /// PostgreSQL: most connections in the pool.
    pub pool_size: Option<u64>,
    /// PostgreSQL: how long a call waits for a free connection.
    pub pool_timeout_ms: Option<u64>,
    /// Group commit: the most events one group gathers.
    pub group_max_events: Option<u64>,
    /// Group commit: how long a leader waits for more callers, in microseconds.
    pub group_max_wait_us: Option<u64>,
    pub audit_key: Option<RawAuditKey>,
    pub plugin_cache_dir: Option<String>,
    /// Plugin limits by name (see [`crate::limits::PLUGIN_LIMIT_FIELDS`]).
    pub plugin_limits: Vec<(String, u64)>,
    /// Inbox limits by name (see [`crate::limits::INBOX_LIMIT_NAMES`]).
    pub inbox_limits: Vec<(String, u64)>,
}

impl RawOptions {
    /// The options, or the first field that breaks a rule.
    pub fn validate(&self) -> Result<Options, ValidationError> {
        let mut options = Options::default();
        if let Some(d) = &self.durability {
            options.sqlite.durability = Durability::parse(d)?;
            options.postgres.durability = options.sqlite.durability;
        }
        if let Some(n) = self.pool_size {
            options.postgres.pool_size = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = self.pool_timeout_ms {
            options.postgres.pool_timeout = Duration::from_millis(ms);
        }
        options.postgres.check()?;
        if let Some(n) = self.group_max_events {
            options.group.max_events = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(us) = self.group_max_wait_us {
            options.group.max_wait = Duration::from_micros(us);
        }
        options.group.check()?;
        if let Some(ms) = self.busy_timeout_ms {
            options.sqlite.busy_timeout = Duration::from_millis(ms);
            check_busy_timeout(options.sqlite.busy_timeout)
                .map_err(|e| ValidationError::new("busy_timeout_ms", e.reason))?;
        }
        options.audit_key = match &self.audit_key {
            None => None,
            Some(RawAuditKey::Bytes(b)) => Some(AuditKey::new(b.clone())?),
            Some(RawAuditKey::Hex(h)) => Some(AuditKey::from_hex(h)?),
        };
        if let Some(dir) = &self.plugin_cache_dir {
            if dir.is_empty() {
                return Err(ValidationError::new(
                    "plugin_cache_dir",
                    "must not be empty",
                ));
            }
            options.plugin_cache_dir = Some(PathBuf::from(dir));
        }
        for (name, value) in &self.plugin_limits {
            options.plugin_limits.set(name, *value)?;
        }
        for (name, value) in &self.inbox_limits {
            options.inbox.set(name, *value)?;
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_once() {
        assert_eq!(Location::parse(":memory:").unwrap(), Location::Memory);
        assert_eq!(
            Location::parse("a/b.db").unwrap(),
            Location::Sqlite(PathBuf::from("a/b.db"))
        );
        for uri in [
            "postgresql://app@db/ledger",
            "postgres://db",
            "POSTGRESQL://x",
        ] {
            assert_eq!(
                Location::parse(uri).unwrap(),
                Location::Postgres(uri.into())
            );
        }
        assert_eq!(Location::parse("").unwrap_err().field, "location");
        let shown = Location::parse("postgresql://app:hunter2@db:5432/ledger?x=1")
            .unwrap()
            .to_string();
        assert_eq!(shown, "postgresql://app:***@db:5432/ledger?x=1");
        let in_query =
            Location::parse("postgresql://db/ledger?user=app&password=s3cret&sslpassword=k3y&x=1")
                .unwrap()
                .to_string();
        assert_eq!(
            in_query,
            "postgresql://db/ledger?user=app&password=***&sslpassword=***&x=1"
        );
    }

    #[test]
    fn raw_options_name_the_field_they_refuse() {
        let bad = |raw: RawOptions| raw.validate().unwrap_err().field;
        let durability = RawOptions {
            durability: Some("fast".into()),
            ..RawOptions::default()
        };
        assert_eq!(bad(durability), "durability");
        let key = RawOptions {
            audit_key: Some(RawAuditKey::Hex("abc".into())),
            ..RawOptions::default()
        };
        assert_eq!(bad(key), "audit_key_hex");
        let empty = RawOptions {
            audit_key: Some(RawAuditKey::Bytes(Vec::new())),
            ..RawOptions::default()
        };
        assert_eq!(bad(empty), "audit_key");
        let limit = RawOptions {
            plugin_limits: vec![("events_max".into(), 0)],
            ..RawOptions::default()
        };
        assert_eq!(bad(limit), "events_max");
        let group = RawOptions {
            group_max_events: Some(0),
            ..RawOptions::default()
        };
        assert_eq!(bad(group), "group_max_events");
        let inbox = RawOptions {
            inbox_limits: vec![("deliveries_max".into(), 0)],
            ..RawOptions::default()
        };
        assert_eq!(bad(inbox), "deliveries_max");
        let unknown = RawOptions {
            inbox_limits: vec![("retention".into(), 5)],
            ..RawOptions::default()
        };
        assert_eq!(bad(unknown), "inbox_limits");
        let kept = RawOptions {
            inbox_limits: vec![
                ("retention_s".into(), 3600),
                ("ingested_body_retention_s".into(), 60),
                ("deliveries_max".into(), 10),
                ("prune_every".into(), 1),
            ],
            ..RawOptions::default()
        }
        .validate()
        .unwrap()
        .inbox;
        assert_eq!(
            kept,
            InboxLimits {
                retention: Duration::from_secs(3600),
                ingested_body_retention: Duration::from_secs(60),
                deliveries_max: 10,
                prune_every: 1,
            }
        );
        let wait = RawOptions {
            group_max_wait_us: Some(1_000_001),
            ..RawOptions::default()
        };
        assert_eq!(bad(wait), "group_max_wait_us");
        let grouped = RawOptions {
            group_max_events: Some(64),
            group_max_wait_us: Some(0),
            ..RawOptions::default()
        }
        .validate()
        .unwrap();
        assert_eq!(grouped.group.max_events, 64);
        assert_eq!(grouped.group.max_wait, Duration::ZERO);
        let ok = RawOptions {
            durability: Some("normal".into()),
            busy_timeout_ms: Some(250),
            plugin_limits: vec![("events_max".into(), 7)],
            ..RawOptions::default()
        }
        .validate()
        .unwrap();
        assert_eq!(ok.sqlite.durability, Durability::Normal);
        assert_eq!(ok.sqlite.busy_timeout, Duration::from_millis(250));
        assert_eq!(ok.plugin_limits.events_max, 7);
    }
}
