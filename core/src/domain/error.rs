//! The one error taxonomy of walletlog. Every binding maps [`ErrorKind`] 1:1.

use std::fmt;

use super::values::{EventId, MatchedKey};

/// Every failure walletlog reports. Match on [`Error::kind`] for the category.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input broke a rule; nothing was stored.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The input's keys match stored history that says something else; nothing was stored.
    #[error(transparent)]
    Conflict(#[from] ConflictError),
    /// A lookup that must find something found nothing.
    #[error("not found: {what}")]
    NotFound { what: String },
    /// Storage failed: I/O, a corrupt or foreign file, a schema too new, a lock held too long.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A signature (of a webhook, or of a request to a service) was missing,
    /// malformed, wrong or stale.
    #[error("signature refused: {0}")]
    Signature(#[from] SignatureError),
    /// A plugin misbehaved or was refused: a trap, exhausted fuel, memory or
    /// time, output over its limits or invalid, an import, a wrong world.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// The category of an [`Error`], stable across bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    Validation,
    Conflict,
    NotFound,
    Signature,
    Plugin,
    Storage,
}

impl ErrorKind {
    /// `validation`, `conflict`, `not_found`, `signature`, `plugin` or `storage`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Signature => "signature",
            ErrorKind::Plugin => "plugin",
            ErrorKind::Storage => "storage",
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Validation(_) => ErrorKind::Validation,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Storage(_) => ErrorKind::Storage,
            Error::Signature(_) => ErrorKind::Signature,
            Error::Plugin(_) => ErrorKind::Plugin,
        }
    }

    /// A machine-readable name for what went wrong within the kind: the
    /// storage kind (`busy`, `corrupt`, ...), the plugin kind (`trap`,
    /// `out_of_fuel`, ...), the signature problem (`mismatch`, ...), or for a
    /// conflict `different_fields` or `keys_match_different_events`.
    /// `None` for validation and not found, whose `field` says it.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Error::Validation(_) | Error::NotFound { .. } => None,
            Error::Conflict(c) => Some(c.reason.code()),
            Error::Storage(s) => Some(s.kind.as_str()),
            Error::Signature(s) => Some(s.code()),
            Error::Plugin(p) => Some(p.kind.as_str()),
        }
    }

    /// The field a validation error names, or the key a conflict matched.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Validation(v) => Some(v.field),
            Error::Conflict(c) => Some(c.key.as_str()),
            _ => None,
        }
    }

    /// Why a validation error refused its field, without the field's name.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Validation(v) => Some(&v.reason),
            _ => None,
        }
    }

    /// The offending item's position in a batch.
    pub fn index(&self) -> Option<usize> {
        match self {
            Error::Validation(v) => v.index,
            Error::Conflict(c) => c.index,
            _ => None,
        }
    }

    /// Attach the position of the offending item in a batch.
    pub(crate) fn at_index(self, index: usize) -> Self {
        match self {
            Error::Validation(e) => Error::Validation(e.at_index(index)),
            Error::Conflict(mut e) => {
                e.index = Some(index);
                Error::Conflict(e)
            }
            other => other,
        }
    }
}

/// A rule breach, naming the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Position in a batch, when the input was one.
    pub index: Option<usize>,
    /// The field that broke a rule, such as `amount` or `limit`.
    pub field: &'static str,
    /// Why, in words a caller can show.
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ValidationError {
            index: None,
            field,
            reason: reason.into(),
        }
    }

    pub fn at_index(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "invalid item {i}: {}: {}", self.field, self.reason),
            None => write!(f, "invalid {}: {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for ValidationError {}

/// A replay whose keys match stored history that disagrees with it
/// (TigerBeetle's `exists_with_different_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictError {
    /// Position in a batch, when the input was one.
    pub index: Option<usize>,
    /// The key that matched.
    pub key: MatchedKey,
    /// The stored event the key matched.
    pub existing_event_id: EventId,
    /// What disagrees.
    pub reason: ConflictReason,
    /// The offered event in words, when its position says little (a
    /// webhook's events: `provider event pi_1 (deposit of 20 USD)`).
    pub event: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictReason {
    /// The matched event's money fields differ from the input's.
    DifferentFields(Vec<&'static str>),
    /// Another of the input's keys matched a different stored event.
    KeysMatchDifferentEvents {
        other_key: MatchedKey,
        other_event_id: EventId,
    },
}

impl ConflictReason {
    /// `different_fields` or `keys_match_different_events`.
    pub fn code(&self) -> &'static str {
        match self {
            ConflictReason::DifferentFields(_) => "different_fields",
            ConflictReason::KeysMatchDifferentEvents { .. } => "keys_match_different_events",
        }
    }
}

impl ConflictError {
    /// The money fields in which the input differs from the stored event
    /// (empty when two keys matched two different events).
    pub fn fields(&self) -> &[&'static str] {
        match &self.reason {
            ConflictReason::DifferentFields(fields) => fields,
            ConflictReason::KeysMatchDifferentEvents { .. } => &[],
        }
    }
}

impl fmt::Display for ConflictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.event, self.index) {
            (Some(event), _) => write!(f, "{event}: ")?,
            (None, Some(i)) => write!(f, "item {i}: ")?,
            (None, None) => {}
        }
        match &self.reason {
            ConflictReason::DifferentFields(fields) => write!(
                f,
                "conflict on {}: stored event {} exists with different {}",
                self.key,
                self.existing_event_id,
                fields.join(", ")
            ),
            ConflictReason::KeysMatchDifferentEvents {
                other_key,
                other_event_id,
            } => write!(
                f,
                "conflict: {} matches stored event {} but {} matches stored event {}",
                self.key, self.existing_event_id, other_key, other_event_id
            ),
        }
    }
}

impl std::error::Error for ConflictError {}

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError {
    pub kind: StorageErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// Reading or writing the file failed.
    Io,
    /// Another writer held the lock past the busy timeout.
    Busy,
    /// The file is damaged or is not a walletlog database.
    Corrupt,
    /// The file was written by a newer walletlog; opening it would downgrade it.
    SchemaTooNew,
    /// The ledger's audit key does not match the one configured.
    AuditKeyMismatch,
    /// The ledger was closed.
    Closed,
    /// The storage server cannot be reached, or the connection to it was lost.
    Unavailable,
    /// This engine, or this build, cannot do what was asked: an engine not
    /// compiled in, a file backup of an in-memory ledger.
    Unsupported,
    /// Anything else the storage engine reported.
    Other,
}

impl StorageErrorKind {
    /// `io`, `busy`, `corrupt`, `schema_too_new`, `audit_key_mismatch`,
    /// `closed`, `unavailable`, `unsupported` or `other`: stable across
    /// versions and faces.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageErrorKind::Io => "io",
            StorageErrorKind::Busy => "busy",
            StorageErrorKind::Corrupt => "corrupt",
            StorageErrorKind::SchemaTooNew => "schema_too_new",
            StorageErrorKind::AuditKeyMismatch => "audit_key_mismatch",
            StorageErrorKind::Closed => "closed",
            StorageErrorKind::Unavailable => "unavailable",
            StorageErrorKind::Unsupported => "unsupported",
            StorageErrorKind::Other => "other",
        }
    }
}

impl StorageError {
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        StorageError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "storage error ({}): {}",
            self.kind.as_str(),
            self.message
        )
    }
}

impl std::error::Error for StorageError {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a webhook's signature was refused. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// A header the scheme needs is absent.
    MissingHeader(String),
    /// A header the scheme reads appears more than once.
    DuplicateHeader(String),
    /// A header is present but not in the scheme's format.
    Malformed { header: String, reason: String },
    /// No signature in the request matches the body with the configured secret.
    Mismatch,
    /// The signed timestamp is further than the tolerance from now.
    TimestampOutOfTolerance {
        timestamp: i64,
        now: i64,
        tolerance_secs: i64,
    },
    /// The configured secret cannot be decoded as the scheme requires.
    BadSecret(String),
    /// The scheme signs the URL, and the request carries none.
    MissingUrl,
    /// The provider's plugin declares a signature scheme and the host
    /// configured no secret: refused, whatever `allow_unsigned` says.
    NoSecret {
        provider: String,
        scheme: &'static str,
    },
    /// The provider's plugin declares no signature scheme and unsigned
    /// deliveries were not allowed for it.
    Unsigned { provider: String },
}

impl SignatureError {
    /// `missing_header`, `duplicate_header`, `malformed`, `mismatch`,
    /// `timestamp_out_of_tolerance`, `bad_secret`, `missing_url`, `no_secret`
    /// or `unsigned`.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingHeader(_) => "missing_header",
            SignatureError::DuplicateHeader(_) => "duplicate_header",
            SignatureError::Malformed { .. } => "malformed",
            SignatureError::Mismatch => "mismatch",
            SignatureError::TimestampOutOfTolerance { .. } => "timestamp_out_of_tolerance",
            SignatureError::BadSecret(_) => "bad_secret",
            SignatureError::MissingUrl => "missing_url",
            SignatureError::NoSecret { .. } => "no_secret",
            SignatureError::Unsigned { .. } => "unsigned",
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::MissingHeader(h) => write!(f, "signature header {h} is missing"),
            SignatureError::DuplicateHeader(h) => {
                write!(f, "signature header {h} appears more than once")
            }
            SignatureError::Malformed { header, reason } => {
                write!(f, "signature header {header} is malformed: {reason}")
            }
            SignatureError::Mismatch => {
                f.write_str("no signature matches the body with the configured secret")
            }
            SignatureError::TimestampOutOfTolerance {
                timestamp,
                now,
                tolerance_secs,
            } => write!(
                f,
                "signed timestamp {timestamp} is {}s from now ({now}); \
                 at most {tolerance_secs}s allowed",
                now.abs_diff(*timestamp)
            ),
            SignatureError::BadSecret(reason) => {
                write!(f, "the configured secret is unusable: {reason}")
            }
            SignatureError::MissingUrl => {
                f.write_str("the scheme signs the request URL and none was given")
            }
            SignatureError::NoSecret { provider, scheme } => write!(
                f,
                "the webhook secret is missing: provider {provider}'s plugin signs with \
                 {scheme}, and no secret is configured for it (set_webhook_secret); \
                 allowing unsigned webhooks never turns a declared check off"
            ),
            SignatureError::Unsigned { provider } => write!(
                f,
                "provider {provider}'s plugin declares no signature scheme: declare the \
                 provider's scheme in the plugin, or allow unsigned webhooks for \
                 {provider} deliberately (allow_unsigned)"
            ),
        }
    }
}

impl std::error::Error for SignatureError {}

/// A plugin was refused at install, or failed on a webhook. The host stays
/// healthy: a failed instance is discarded and nothing is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub kind: PluginErrorKind,
    /// The plugin's provider and version, when known (`stripe@1.2.0`).
    pub plugin: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PluginErrorKind {
    /// Refused at install: not a component, imports something, not the
    /// normalizer world, or `info` is invalid.
    Refused,
    /// No plugin is installed for the provider.
    NotInstalled,
    /// The plugin trapped (a panic, `unreachable`, an out-of-bounds access).
    Trap,
    /// The call used up its fuel budget.
    OutOfFuel,
    /// The call ran past its wall-clock deadline.
    Timeout,
    /// The plugin asked for more memory than its cap.
    OutOfMemory,
    /// The request was larger than the plugin may be sent.
    RequestTooLarge,
    /// The plugin returned more bytes or events than allowed.
    OutputTooLarge,
    /// An event the plugin returned broke a validation rule.
    InvalidOutput,
    /// The plugin said the webhook is malformed.
    Malformed,
    /// The plugin said it does not support this webhook.
    Unsupported,
}

impl PluginErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginErrorKind::Refused => "refused",
            PluginErrorKind::NotInstalled => "not_installed",
            PluginErrorKind::Trap => "trap",
            PluginErrorKind::OutOfFuel => "out_of_fuel",
            PluginErrorKind::Timeout => "timeout",
            PluginErrorKind::OutOfMemory => "out_of_memory",
            PluginErrorKind::RequestTooLarge => "request_too_large",
            PluginErrorKind::OutputTooLarge => "output_too_large",
            PluginErrorKind::InvalidOutput => "invalid_output",
            PluginErrorKind::Malformed => "malformed",
            PluginErrorKind::Unsupported => "unsupported",
        }
    }
}

impl PluginError {
    pub fn new(kind: PluginErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            plugin: None,
            message: message.into(),
        }
    }

    pub fn for_plugin(mut self, plugin: impl Into<String>) -> Self {
        self.plugin = Some(plugin.into());
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.plugin {
            Some(p) => write!(f, "plugin {p}: {} ({})", self.message, self.kind.as_str()),
            None => write!(f, "plugin: {} ({})", self.message, self.kind.as_str()),
        }
    }
}

impl std::error::Error for PluginError {}
