//! `walletlog._walletlog`: the native half of the Python module.
//!
//! A thin translation layer: plain values in (str, int, bytes), plain
//! values out (tuples), every storage and plugin call with the GIL released.
//! The typed public API (Decimal, datetime, UUID, dataclasses) is the pure
//! Python package `walletlog` around it. No business logic lives here.

use std::sync::{Arc, RwLock};

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyType};
use walletlog::encoding::hex;
use walletlog::signature::{sign_request as sign, verify_request as verify, HttpRequest};
use walletlog::{
    AuditRecord, DeliveryId, Error, EventId, IdempotencyKey, IngestResult, Ledger, Provider,
    ProviderEventId, RawAuditKey, RawEvent, RawInboxQuery, RawListQuery, RawOptions,
    RawReplaySelection, RawTime, Secret, SigningKey, Timestamp, ValidationError, VerifyingKey,
    WalletId, WalletTransactionEvent, Webhook,
};

/// An event as a tuple: (event_id, wallet_id, provider, event_type, amount,
/// currency, provider_event_id, idempotency_key, metadata_json,
/// occurred_at_us, created_at_us, (sequence, occurred_at_estimated)): at
/// most 12 elements convert, so the last two share one.
type EventTuple = (
    String,
    String,
    String,
    &'static str,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    (u64, bool),
);

fn event_tuple(e: &WalletTransactionEvent) -> EventTuple {
    (
        e.event_id.to_string(),
        e.wallet_id.to_string(),
        e.provider.to_string(),
        e.event_type.as_str(),
        e.amount.to_string(),
        e.currency.to_string(),
        e.provider_event_id.as_ref().map(|k| k.to_string()),
        e.idempotency_key.as_ref().map(|k| k.to_string()),
        e.metadata.as_json().to_owned(),
        e.occurred_at.as_micros(),
        e.created_at.as_micros(),
        (e.sequence, e.occurred_at_estimated),
    )
}

/// A stored event, kept native: its fields become Python values only when
/// read, so a batch of results costs one small object per event.
#[pyclass(frozen, module = "walletlog._walletlog")]
struct NativeEvent(WalletTransactionEvent);

#[pymethods]
impl NativeEvent {
    /// The event as an `EventTuple`.
    fn fields(&self) -> EventTuple {
        event_tuple(&self.0)
    }

    #[getter]
    fn sequence(&self) -> u64 {
        self.0.sequence
    }
}

/// (created, matched_on, event)
type ResultTuple = (bool, Option<&'static str>, NativeEvent);

fn result_tuple(r: IngestResult) -> ResultTuple {
    (
        r.created(),
        r.matched_on().map(|k| k.as_str()),
        NativeEvent(r.event),
    )
}

/// The arguments of a `walletlog.errors` exception, the same for every kind
/// (the JSON error shape's keys): (message, field, reason, index, code,
/// key, fields, existing_event_id).
type ErrorArgs = (
    String,
    Option<&'static str>,
    Option<String>,
    Option<usize>,
    Option<&'static str>,
    Option<&'static str>,
    Option<Vec<&'static str>>,
    Option<String>,
);

/// (currency, available, held, total, event_count, last_occurred_at_us)
type BalanceTuple = (String, String, String, String, u64, Option<i64>);

/// An inbox entry as a tuple (see `inbox`).
type InboxEntry<'py> = (
    String,
    String,
    i64,
    &'static str,
    Option<String>,
    Bound<'py, PyBytes>,
    String,
    Vec<String>,
    u64,
);

/// Raises the matching exception class of `walletlog.errors`.
fn to_py(e: Error) -> PyErr {
    Python::attach(|py| {
        let class = match &e {
            Error::Validation(_) => "ValidationError",
            Error::Conflict(_) => "ConflictError",
            Error::NotFound { .. } => "NotFoundError",
            Error::Signature(_) => "SignatureError",
            Error::Plugin(_) => "PluginError",
            _ => "StorageError",
        };
        let conflict = match &e {
            Error::Conflict(c) => Some(c),
            _ => None,
        };
        let args: ErrorArgs = (
            e.to_string(),
            e.field(),
            e.reason().map(str::to_owned),
            e.index(),
            e.code(),
            conflict.map(|c| c.key.as_str()),
            conflict.map(|c| c.fields().to_vec()),
            conflict.map(|c| c.existing_event_id.to_string()),
        );
        match py.import("walletlog.errors").and_then(|m| m.getattr(class)) {
            Ok(cls) => match cls.cast_into::<PyType>() {
                Ok(cls) => PyErr::from_type(cls, args),
                Err(_) => PyTypeError::new_err(e.to_string()),
            },
            Err(import_error) => import_error,
        }
    })
}

/// A time argument as the Python layer passes it: microseconds since the
/// epoch (from an aware `datetime`) or RFC 3339 text.
#[derive(FromPyObject)]
enum TimeArg {
    Micros(i64),
    Text(String),
}

impl TimeArg {
    fn raw(self) -> RawTime {
        match self {
            TimeArg::Micros(us) => RawTime::Micros(us),
            TimeArg::Text(t) => RawTime::Rfc3339(t),
        }
    }
}

/// Items converted per stretch under the GIL in a call of many: between
/// stretches the GIL is offered to other threads, so that an asyncio loop
/// (whose call runs on a worker thread) is not stalled by a long list.
const GIL_STRETCH: usize = 256;

/// Offers the GIL to a waiting thread before item `i` of a long list.
fn offer_gil(py: Python<'_>, i: usize) {
    if i > 0 && i.is_multiple_of(GIL_STRETCH) {
        py.detach(|| ());
    }
}

/// A Python list of `items`, built in stretches (see [`GIL_STRETCH`]).
fn list_of<'py, T: IntoPyObject<'py>>(
    py: Python<'py>,
    items: impl Iterator<Item = T>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (i, item) in items.enumerate() {
        offer_gil(py, i);
        list.append(item)?;
    }
    Ok(list)
}

fn validation(e: ValidationError) -> PyErr {
    to_py(Error::Validation(e))
}

/// An ingest result as JSON text, its event's idempotency key shown
/// without `prefix` (the router's namespace of the caller's key).
fn shown_result(r: &IngestResult, prefix: &str) -> String {
    let mut answer = walletlog::json::ingest_result(r);
    if let Some(serde_json::Value::String(k)) = answer
        .get_mut("event")
        .and_then(|e| e.get_mut("idempotency_key"))
    {
        if let Some(own) = k.strip_prefix(prefix) {
            *k = own.to_owned();
        }
    }
    answer.to_string()
}

fn closed() -> PyErr {
    to_py(Error::Storage(walletlog::StorageError::new(
        walletlog::StorageErrorKind::Closed,
        "the ledger is closed",
    )))
}

/// The native ledger. Thread-safe: share one between threads.
///
/// A ledger belongs to the process that opened it. In a child forked from
/// that process it refuses every call, and it is never closed there: its
/// connections are the parent's (closing a PostgreSQL connection would end
/// the parent's session, and SQLite forbids using a connection across a
/// fork), so the child leaks it. The Python layer opens a new one instead.
#[pyclass(frozen, module = "walletlog._walletlog")]
struct NativeLedger {
    inner: RwLock<Option<Arc<Ledger>>>,
    /// The process that opened it.
    pid: u32,
}

impl NativeLedger {
    fn ledger(&self) -> PyResult<Arc<Ledger>> {
        if self.forked() {
            return Err(to_py(Error::Storage(walletlog::StorageError::new(
                walletlog::StorageErrorKind::Closed,
                format!(
                    "this ledger was opened by process {} before a fork; \
                     open a new Ledger in this process",
                    self.pid
                ),
            ))));
        }
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(closed)
    }

    fn forked(&self) -> bool {
        std::process::id() != self.pid
    }
}

impl Drop for NativeLedger {
    fn drop(&mut self) {
        if self.forked() {
            // The parent's connections: never closed from a child.
            let inherited = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
            std::mem::forget(inherited.take());
        }
    }
}

/// One event's fields as the Python layer passes them, in this order:
/// (wallet_id, provider, event_type, amount, currency, occurred_at,
/// provider_event_id, idempotency_key, metadata_json, event_id). A tuple,
/// not a dict: a batch converts thousands of them.
#[derive(FromPyObject)]
struct EventFields(
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl EventFields {
    fn raw(self) -> RawEvent {
        let EventFields(
            wallet_id,
            provider,
            event_type,
            amount,
            currency,
            occurred_at,
            provider_event_id,
            idempotency_key,
            metadata,
            event_id,
        ) = self;
        RawEvent {
            event_id,
            wallet_id,
            provider,
            event_type,
            amount,
            currency,
            provider_event_id,
            idempotency_key,
            metadata,
            occurred_at,
            occurred_at_estimated: false,
        }
    }
}

#[pymethods]
impl NativeLedger {
    #[new]
    #[pyo3(signature = (path, durability, audit_key, busy_timeout_ms, plugin_cache_dir, pool_size, pool_timeout_ms, group_max_events, group_max_wait_us, plugin_limits, inbox_limits))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: String,
        durability: String,
        audit_key: Option<Vec<u8>>,
        busy_timeout_ms: Option<u64>,
        plugin_cache_dir: Option<String>,
        pool_size: Option<u64>,
        pool_timeout_ms: Option<u64>,
        group_max_events: Option<u64>,
        group_max_wait_us: Option<u64>,
        plugin_limits: Vec<(String, u64)>,
        inbox_limits: Vec<(String, u64)>,
    ) -> PyResult<Self> {
        let options = RawOptions {
            durability: Some(durability),
            busy_timeout_ms,
            pool_size,
            pool_timeout_ms,
            group_max_events,
            group_max_wait_us,
            audit_key: audit_key.map(RawAuditKey::Bytes),
            plugin_cache_dir,
            plugin_limits,
            inbox_limits,
        }
        .validate()
        .map_err(validation)?;
        let ledger = py.detach(|| Ledger::open(&path, options)).map_err(to_py)?;
        Ok(NativeLedger {
            inner: RwLock::new(Some(Arc::new(ledger))),
            pid: std::process::id(),
        })
    }

    fn close(&self) {
        if self.forked() {
            // Dropped as Drop does it: leaked, never closed (see the type).
            return;
        }
        self.inner.write().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The HTTP router's ingest of several requests at once, off the GIL
    /// from body to answer, in one transaction, each request on its own
    /// terms (`ingest_each`). Per request `(body, wallet_id,
    /// idempotency_key, shown_prefix, fallback_event_id)`: `body` a JSON
    /// object of the event's fields, its wallet and idempotency key (the
    /// header's, namespaced by `shown_prefix`) given beside it; `fallback_event_id` the event's id if the body names
    /// neither an event id nor a provider event id. Per
    /// request back, `(True, (created, JSON text of the result))`, the
    /// event's idempotency key shown without `shown_prefix`, or `(False,
    /// the exception)`. Only a storage failure fails the call, and then
    /// nothing is stored.
    #[allow(clippy::type_complexity)]
    fn ingest_http_each(
        &self,
        py: Python<'_>,
        requests: Vec<(Vec<u8>, String, Option<String>, String, Option<String>)>,
    ) -> PyResult<Vec<(bool, Py<PyAny>)>> {
        let ledger = self.ledger()?;
        let answers: Vec<walletlog::Result<(bool, String)>> = py
            .detach(|| {
                let parsed: Vec<_> = requests
                    .iter()
                    .map(|(body, wallet, key, prefix, fallback)| {
                        walletlog::json::parse_event_for(
                            body,
                            wallet,
                            key.as_deref(),
                            prefix,
                            fallback.as_deref(),
                        )
                    })
                    .collect();
                let events: Vec<_> = parsed
                    .iter()
                    .filter_map(|p| p.as_ref().ok())
                    .cloned()
                    .collect();
                let mut stored = ledger.ingest_each(&events)?.into_iter();
                Ok::<_, Error>(
                    parsed
                        .into_iter()
                        .zip(&requests)
                        .map(|(p, (_, _, _, prefix, _))| match p {
                            Err(e) => Err(Error::Validation(e)),
                            Ok(_) => stored
                                .next()
                                .expect("one answer per valid event")
                                .map(|r| (r.created(), shown_result(&r, prefix))),
                        })
                        .collect(),
                )
            })
            .map_err(to_py)?;
        answers
            .into_iter()
            .map(|a| match a {
                Ok(pair) => (true, pair.into_pyobject(py).map(|o| o.into_any().unbind())),
                Err(e) => (false, Ok(to_py(e).into_value(py).into_any())),
            })
            .map(|(ok, v)| v.map(|v| (ok, v)))
            .collect()
    }

    /// The installed plugin of `provider`: (provider, version, signature).
    fn plugin(&self, provider: &str) -> PyResult<Option<(String, String, &'static str)>> {
        Ok(self
            .ledger()?
            .plugin(provider)
            .map(|p| (p.provider, p.version, p.signature.name())))
    }

    /// True in a process forked from the one that opened this ledger.
    fn opened_before_fork(&self) -> bool {
        self.forked()
    }

    /// The metrics in the OpenMetrics text format.
    fn metrics(&self) -> PyResult<String> {
        Ok(self.ledger()?.metrics_text())
    }

    fn ingest(&self, py: Python<'_>, fields: EventFields) -> PyResult<ResultTuple> {
        let event = fields.raw().validate().map_err(validation)?;
        let ledger = self.ledger()?;
        let r = py.detach(move || ledger.ingest(&event)).map_err(to_py)?;
        Ok(result_tuple(r))
    }

    fn ingest_many<'py>(
        &self,
        py: Python<'py>,
        items: Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyList>> {
        // Read under the GIL in stretches; validated and ingested without it.
        let mut raws = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            offer_gil(py, i);
            raws.push(item.extract::<EventFields>()?.raw());
        }
        let ledger = self.ledger()?;
        let results = py.detach(move || -> walletlog::Result<Vec<IngestResult>> {
            let events = raws
                .into_iter()
                .enumerate()
                .map(|(i, r)| r.validate().map_err(|e| Error::Validation(e.at_index(i))))
                .collect::<walletlog::Result<Vec<_>>>()?;
            ledger.ingest_batch(&events)
        });
        list_of(py, results.map_err(to_py)?.into_iter().map(result_tuple))
    }

    fn get(&self, py: Python<'_>, event_id: &str) -> PyResult<Option<EventTuple>> {
        let id = EventId::parse(event_id).map_err(validation)?;
        let ledger = self.ledger()?;
        let e = py.detach(move || ledger.get(&id)).map_err(to_py)?;
        Ok(e.as_ref().map(event_tuple))
    }

    fn get_by_provider_event_id(
        &self,
        py: Python<'_>,
        provider: &str,
        provider_event_id: &str,
    ) -> PyResult<Option<EventTuple>> {
        let p = Provider::new(provider).map_err(validation)?;
        let id = ProviderEventId::new(provider_event_id).map_err(validation)?;
        let ledger = self.ledger()?;
        let e = py
            .detach(move || ledger.get_by_provider_event_id(&p, &id))
            .map_err(to_py)?;
        Ok(e.as_ref().map(event_tuple))
    }

    fn get_by_idempotency_key(&self, py: Python<'_>, key: &str) -> PyResult<Option<EventTuple>> {
        let k = IdempotencyKey::new(key).map_err(validation)?;
        let ledger = self.ledger()?;
        let e = py
            .detach(move || ledger.get_by_idempotency_key(&k))
            .map_err(to_py)?;
        Ok(e.as_ref().map(event_tuple))
    }

    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (wallet_id, limit, cursor, order, event_types, since, until, currency))]
    fn list(
        &self,
        py: Python<'_>,
        wallet_id: String,
        limit: i64,
        cursor: Option<String>,
        order: String,
        event_types: Option<Vec<String>>,
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        currency: Option<String>,
    ) -> PyResult<(Vec<EventTuple>, Option<String>)> {
        let query = RawListQuery {
            wallet_id,
            limit: Some(limit),
            order: Some(order),
            event_types,
            since: since.map(TimeArg::raw),
            until: until.map(TimeArg::raw),
            currency,
            cursor,
        }
        .validate()
        .map_err(validation)?;
        let ledger = self.ledger()?;
        let page = py.detach(move || ledger.list(&query)).map_err(to_py)?;
        Ok((
            page.events.iter().map(event_tuple).collect(),
            page.next_cursor,
        ))
    }

    /// [(currency, available, held, total, event_count, last_occurred_at_us)]
    #[pyo3(signature = (wallet_id, as_of))]
    fn balance(
        &self,
        py: Python<'_>,
        wallet_id: &str,
        as_of: Option<TimeArg>,
    ) -> PyResult<Vec<BalanceTuple>> {
        let w = WalletId::new(wallet_id).map_err(validation)?;
        let as_of: Option<Timestamp> = as_of
            .map(|t| t.raw().validate("as_of"))
            .transpose()
            .map_err(validation)?;
        let ledger = self.ledger()?;
        let balances = py
            .detach(move || ledger.balance(&w, as_of))
            .map_err(to_py)?;
        Ok(balances
            .iter()
            .map(|b| {
                (
                    b.currency.to_string(),
                    b.available.to_string(),
                    b.held.to_string(),
                    b.total.to_string(),
                    b.event_count,
                    b.last_occurred_at.map(|t| t.as_micros()),
                )
            })
            .collect())
    }

    fn changes_since<'py>(
        &self,
        py: Python<'py>,
        sequence: u64,
        limit: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let ledger = self.ledger()?;
        let events = py
            .detach(move || ledger.changes_since(sequence, limit))
            .map_err(to_py)?;
        list_of(py, events.iter().map(event_tuple))
    }

    /// [(sequence, recorded_at_us, action, event_id, event_sequence,
    /// matched_on, actor, fingerprint_hex, body_sha256_hex, prev_hash_hex, hash_hex,
    /// delivery_id)]
    #[allow(clippy::type_complexity)]
    fn audit_log(
        &self,
        py: Python<'_>,
        sequence: u64,
        limit: usize,
    ) -> PyResult<
        Vec<(
            u64,
            i64,
            &'static str,
            String,
            u64,
            Option<&'static str>,
            String,
            String,
            Option<String>,
            String,
            String,
            Option<String>,
        )>,
    > {
        let ledger = self.ledger()?;
        let records = py
            .detach(move || ledger.audit_log(sequence, limit))
            .map_err(to_py)?;
        Ok(records
            .iter()
            .map(|r: &AuditRecord| {
                (
                    r.sequence,
                    r.recorded_at.as_micros(),
                    r.action.as_str(),
                    r.event_id.to_string(),
                    r.event_sequence,
                    r.matched_on.map(|k| k.as_str()),
                    r.actor.clone(),
                    hex(&r.fingerprint),
                    r.body_sha256.as_ref().map(|h| hex(h)),
                    hex(&r.prev_hash),
                    hex(&r.hash),
                    r.delivery_id.map(|d| d.to_string()),
                )
            })
            .collect())
    }

    /// The audit trail's head now, as a checkpoint signed with the 32-byte
    /// Ed25519 `signing_key`.
    fn audit_checkpoint(&self, py: Python<'_>, signing_key: &[u8]) -> PyResult<String> {
        let key = SigningKey::from_bytes(signing_key).map_err(validation)?;
        let ledger = self.ledger()?;
        py.detach(move || ledger.audit_checkpoint(&key))
            .map_err(to_py)
    }

    /// (ok, records_checked, events_checked, first_bad_sequence,
    /// first_bad_event_sequence, problem kind, reason); with checkpoints,
    /// also that the ledger extends each.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (checkpoints, verifying_key))]
    fn verify_audit(
        &self,
        py: Python<'_>,
        checkpoints: Option<Vec<String>>,
        verifying_key: Option<Vec<u8>>,
    ) -> PyResult<(
        bool,
        u64,
        u64,
        Option<u64>,
        Option<u64>,
        Option<&'static str>,
        Option<String>,
    )> {
        let key = verifying_key
            .map(|k| VerifyingKey::from_bytes(&k))
            .transpose()
            .map_err(validation)?;
        let ledger = self.ledger()?;
        let r =
            match (checkpoints, key) {
                (None, _) => py.detach(move || ledger.verify_audit()),
                (Some(_), None) => return Err(validation(ValidationError::new(
                    "verifying_key",
                    "is needed to verify checkpoints: the public key of the one that signed them",
                ))),
                (Some(texts), Some(key)) => py.detach(move || {
                    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                    ledger.verify_audit_with(&texts, &key)
                }),
            }
            .map_err(to_py)?;
        let p = r.first_problem.as_ref();
        Ok((
            r.ok,
            r.records_checked,
            r.events_checked,
            p.and_then(|p| p.record_sequence),
            p.and_then(|p| p.event_sequence),
            p.map(|p| p.kind.as_str()),
            p.map(|p| p.to_string()),
        ))
    }

    /// (provider, version, signature scheme name)
    fn install_plugin(
        &self,
        py: Python<'_>,
        wasm: Vec<u8>,
    ) -> PyResult<(String, String, &'static str)> {
        let ledger = self.ledger()?;
        let info = py
            .detach(move || ledger.install_plugin(&wasm))
            .map_err(to_py)?;
        Ok((info.provider, info.version, info.signature.name()))
    }

    fn set_webhook_secret(&self, provider: &str, secret: String) -> PyResult<()> {
        self.ledger()?
            .set_webhook_secret(provider, Secret::new(secret))
            .map_err(to_py)
    }

    fn allow_unsigned(&self, provider: &str) -> PyResult<()> {
        self.ledger()?.allow_unsigned(provider).map_err(to_py)
    }

    /// ([(delivery_id, provider, received_at_us, verdict, reason,
    /// body_sha256, plugin_version, [event_id], attempts)], next_cursor)
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (provider, verdict, since, until, limit, cursor, order))]
    fn inbox<'py>(
        &self,
        py: Python<'py>,
        provider: Option<String>,
        verdict: Option<String>,
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        limit: i64,
        cursor: Option<String>,
        order: String,
    ) -> PyResult<(Vec<InboxEntry<'py>>, Option<String>)> {
        let query = RawInboxQuery {
            provider,
            verdict,
            since: since.map(TimeArg::raw),
            until: until.map(TimeArg::raw),
            limit: Some(limit),
            order: Some(order),
            cursor,
        }
        .validate()
        .map_err(validation)?;
        let ledger = self.ledger()?;
        let page = py.detach(move || ledger.inbox(&query)).map_err(to_py)?;
        let entries = page
            .deliveries
            .iter()
            .map(|d| {
                let latest = d.latest();
                (
                    d.delivery_id.to_string(),
                    d.provider.to_string(),
                    d.received_at.as_micros(),
                    latest.verdict.as_str(),
                    latest.reason.clone(),
                    PyBytes::new(py, &d.body_sha256),
                    latest.plugin_version.clone(),
                    latest.event_ids.iter().map(|e| e.to_string()).collect(),
                    d.attempt_count,
                )
            })
            .collect();
        Ok((entries, page.next_cursor))
    }

    /// (headers, body or None when retention pruned it), or None.
    #[allow(clippy::type_complexity)]
    fn inbox_delivery<'py>(
        &self,
        py: Python<'py>,
        delivery_id: &str,
    ) -> PyResult<Option<(Vec<(String, String)>, Option<Bound<'py, PyBytes>>)>> {
        let id = DeliveryId::parse(delivery_id).map_err(validation)?;
        let ledger = self.ledger()?;
        let found = py.detach(move || ledger.delivery(&id)).map_err(to_py)?;
        Ok(found.map(|d| (d.headers, d.body.map(|b| PyBytes::new(py, &b)))))
    }

    /// (replayed, created, duplicates, still_failing, skipped)
    #[pyo3(signature = (delivery_ids, provider, verdict))]
    fn replay(
        &self,
        py: Python<'_>,
        delivery_ids: Option<Vec<String>>,
        provider: Option<String>,
        verdict: Option<String>,
    ) -> PyResult<(u64, u64, u64, u64, u64)> {
        let selection = RawReplaySelection {
            delivery_ids,
            provider,
            verdict,
        }
        .validate()
        .map_err(validation)?;
        let ledger = self.ledger()?;
        let r = py
            .detach(move || ledger.replay(&selection))
            .map_err(to_py)?;
        Ok((
            r.replayed,
            r.created,
            r.duplicates,
            r.still_failing,
            r.skipped,
        ))
    }

    #[pyo3(signature = (provider, headers, body, url))]
    fn ingest_webhook(
        &self,
        py: Python<'_>,
        provider: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        url: Option<String>,
    ) -> PyResult<Vec<ResultTuple>> {
        let ledger = self.ledger()?;
        let hook = Webhook { headers, body, url };
        let results = py
            .detach(move || ledger.ingest_webhook(&provider, &hook))
            .map_err(to_py)?;
        Ok(results.into_iter().map(result_tuple).collect())
    }
}

#[pyfunction]
fn sign_request(
    secret: &[u8],
    method: &str,
    target: &str,
    body: &[u8],
    timestamp: i64,
) -> PyResult<String> {
    sign(
        secret,
        &HttpRequest {
            method,
            target,
            body,
            timestamp,
        },
    )
    .map_err(|e| to_py(Error::Validation(e)))
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn verify_request(
    secret: &[u8],
    method: &str,
    target: &str,
    body: &[u8],
    timestamp: i64,
    signature: &str,
    now: i64,
    tolerance_secs: i64,
) -> PyResult<()> {
    verify(
        secret,
        &HttpRequest {
            method,
            target,
            body,
            timestamp,
        },
        signature,
        now,
        tolerance_secs,
    )
    .map_err(to_py)
}

/// A new Ed25519 key pair from the operating system's randomness:
/// (signing_key, verifying_key), 32 bytes each.
#[pyfunction]
fn ed25519_keypair(py: Python<'_>) -> (Bound<'_, PyBytes>, Bound<'_, PyBytes>) {
    let key = SigningKey::generate();
    (
        PyBytes::new(py, &key.to_bytes()),
        PyBytes::new(py, &key.verifying_key().to_bytes()),
    )
}

#[pymodule]
fn _walletlog(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeLedger>()?;
    m.add_class::<NativeEvent>()?;
    m.add_function(wrap_pyfunction!(sign_request, m)?)?;
    m.add_function(wrap_pyfunction!(verify_request, m)?)?;
    m.add_function(wrap_pyfunction!(ed25519_keypair, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
