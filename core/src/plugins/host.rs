//! The wasmtime engine, its limits, install and normalize.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    StoreLimits, StoreLimitsBuilder, Trap,
};

use super::cache::DiskCache;
use super::{refused, NormalizedEvent, PluginInfo, Webhook};
use crate::domain::{EventType, PluginError, PluginErrorKind, Provider};
use crate::limits::PluginLimits;
use crate::signature::{DigestEncoding, HmacAlgorithm, HmacSpec, SecretEncoding, SignatureScheme};

/// `walletlog:normalizer@1.0.0`.
mod v1_0 {
    wasmtime::component::bindgen!({
        path: "../plugins/wit/normalizer.wit",
        world: "normalizer",
    });
}

/// `walletlog:normalizer@1.1.0`: 1.0.0 with `occurred-at: option<string>`.
mod v1_1 {
    wasmtime::component::bindgen!({
        path: "../plugins/wit/normalizer-1.1.wit",
        world: "normalizer",
    });
}

/// A component ready to instantiate, of either world.
enum Pre {
    V1_0(v1_0::NormalizerPre<StoreState>),
    V1_1(v1_1::NormalizerPre<StoreState>),
}

/// Runs `$body` with `$p` the world's `NormalizerPre` and `$m` its module.
macro_rules! on_world {
    ($pre:expr, |$p:ident, $m:ident| $body:expr) => {
        match $pre {
            Pre::V1_0($p) => {
                use v1_0 as $m;
                $body
            }
            Pre::V1_1($p) => {
                use v1_1 as $m;
                $body
            }
        }
    };
}

/// The occurred-at of either world: 1.0.0's is always there.
trait OccurredAt {
    fn occurred_at(self) -> Option<String>;
}

impl OccurredAt for String {
    fn occurred_at(self) -> Option<String> {
        Some(self)
    }
}

impl OccurredAt for Option<String> {
    fn occurred_at(self) -> Option<String> {
        self
    }
}

/// The conversions between a world's generated types and the host's.
macro_rules! glue {
    ($m:ident) => {
        impl $m::PluginInfo {
            fn into_host(self) -> (String, String, SignatureScheme) {
                let signature = match self.signature {
                    $m::SignatureScheme::None => SignatureScheme::None,
                    $m::SignatureScheme::StripeV1 => SignatureScheme::StripeV1,
                    $m::SignatureScheme::StandardWebhooksV1 => SignatureScheme::StandardWebhooksV1,
                    $m::SignatureScheme::Hmac(h) => SignatureScheme::Hmac(HmacSpec {
                        algorithm: match h.algorithm {
                            $m::HmacAlgorithm::Sha256 => HmacAlgorithm::Sha256,
                            $m::HmacAlgorithm::Sha512 => HmacAlgorithm::Sha512,
                        },
                        header: h.header,
                        encoding: match h.encoding {
                            $m::DigestEncoding::Hex => DigestEncoding::Hex,
                            $m::DigestEncoding::Base64 => DigestEncoding::Base64,
                        },
                        prefix: h.prefix,
                        include_url: h.include_url,
                        secret_encoding: match h.secret_encoding {
                            $m::SecretEncoding::Utf8 => SecretEncoding::Utf8,
                            $m::SecretEncoding::Hex => SecretEncoding::Hex,
                            $m::SecretEncoding::Base64 => SecretEncoding::Base64,
                        },
                    }),
                };
                (self.provider, self.version, signature)
            }
        }

        impl $m::Webhook {
            /// The request, header names lower-cased.
            fn of(webhook: &Webhook) -> Self {
                $m::Webhook {
                    headers: webhook
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect(),
                    body: webhook.body.clone(),
                    url: webhook.url.clone(),
                }
            }
        }

        impl $m::NormalizedEvent {
            fn into_host(self) -> NormalizedEvent {
                NormalizedEvent {
                    wallet_id: self.wallet_id,
                    event_type: match self.event_type {
                        $m::EventType::Deposit => EventType::Deposit,
                        $m::EventType::Withdrawal => EventType::Withdrawal,
                        $m::EventType::TransferIn => EventType::TransferIn,
                        $m::EventType::TransferOut => EventType::TransferOut,
                        $m::EventType::Fee => EventType::Fee,
                        $m::EventType::Refund => EventType::Refund,
                        $m::EventType::Hold => EventType::Hold,
                        $m::EventType::Release => EventType::Release,
                    },
                    amount: self.amount,
                    currency: self.currency,
                    provider_event_id: self.provider_event_id,
                    occurred_at: OccurredAt::occurred_at(self.occurred_at),
                    metadata: self.metadata,
                }
            }
        }

        impl $m::NormalizeError {
            fn into_host(self) -> (PluginErrorKind, String) {
                match self {
                    $m::NormalizeError::Malformed(m) => (PluginErrorKind::Malformed, m),
                    $m::NormalizeError::Unsupported(m) => (PluginErrorKind::Unsupported, m),
                }
            }
        }
    };
}

glue!(v1_0);
glue!(v1_1);

/// What a `normalize` call returned, in the host's types.
type Output = Result<Vec<NormalizedEvent>, (PluginErrorKind, String)>;

impl Pre {
    /// The contract version of the component's world.
    fn contract(&self) -> &'static str {
        match self {
            Pre::V1_0(_) => "1.0.0",
            Pre::V1_1(_) => "1.1.0",
        }
    }

    fn info(
        &self,
        store: &mut Store<StoreState>,
    ) -> wasmtime::Result<(String, String, SignatureScheme)> {
        on_world!(self, |p, m| {
            let _: Option<m::Webhook> = None;
            let instance = p.instantiate(&mut *store)?;
            Ok(instance.call_info(&mut *store)?.into_host())
        })
    }

    fn normalize(
        &self,
        store: &mut Store<StoreState>,
        webhook: &Webhook,
    ) -> wasmtime::Result<Output> {
        on_world!(self, |p, m| {
            let request = m::Webhook::of(webhook);
            let instance = p.instantiate(&mut *store)?;
            Ok(match instance.call_normalize(&mut *store, &request)? {
                Ok(events) => Ok(events.into_iter().map(|e| e.into_host()).collect()),
                Err(e) => Err(e.into_host()),
            })
        })
    }
}

/// How often the epoch ticks: the deadline's resolution.
const EPOCH_TICK: Duration = Duration::from_millis(5);

struct StoreState {
    limits: StoreLimits,
    /// The largest linear memory the call asked for, in bytes.
    peak_memory: usize,
}

/// The store's limits, recording the peak memory on the way.
impl ResourceLimiter for StoreState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// What one `normalize` call cost, beside the limits it ran under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallCost {
    pub fuel: u64,
    /// The largest linear memory the plugin grew to.
    pub peak_memory_bytes: usize,
    pub wall: Duration,
    /// The sum of the returned events' strings (what `output_bytes_max` caps).
    pub output_bytes: usize,
}

/// An installed plugin: its info and a ready-to-instantiate component.
pub struct InstalledPlugin {
    pub info: PluginInfo,
    /// SHA-256 of the component's bytes.
    pub content_hash: [u8; 32],
    /// The world it implements: `1.0.0` or `1.1.0` of `walletlog:normalizer`.
    pub contract: &'static str,
    pre: Pre,
}

/// The engine shared by every plugin of a ledger.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<StoreState>,
    limits: PluginLimits,
    compiled: Mutex<HashMap<[u8; 32], Component>>,
    disk: Option<DiskCache>,
    /// Declared last: dropped (stopped and joined) after the engine.
    _ticker: Option<EpochTicker>,
}

impl PluginHost {
    /// An engine with `limits`; compiled plugins are also cached in
    /// `cache_dir` when given.
    pub fn new(limits: PluginLimits, cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.instances_max)
            .total_core_instances(limits.instances_max * 4)
            .total_memories(limits.instances_max * 2)
            .total_tables(limits.instances_max * 4)
            .max_memory_size(limits.memory_bytes_max)
            // Reset a slot's first pages by memset instead of returning them
            // to the OS: a fresh instance per webhook then costs no page faults.
            .linear_memory_keep_resident(512 << 10)
            .table_keep_resident(64 << 10);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(limits.stack_bytes_max)
            // A small reservation per memory: the pool would otherwise
            // reserve gigabytes of address space per slot.
            .memory_reservation(limits.memory_bytes_max as u64)
            .memory_guard_size(64 << 10)
            .memory_reservation_for_growth(0)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .parallel_compilation(may_compile_in_parallel());
        let engine = Engine::new(&config)
            .map_err(|e| refused(format!("the plugin engine cannot start: {e:#}")))?;
        let ticker = EpochTicker::start(&engine);
        let disk = cache_dir.map(|dir| DiskCache::new(dir, &engine));
        Ok(PluginHost {
            linker: Linker::new(&engine),
            engine,
            limits,
            compiled: Mutex::new(HashMap::new()),
            disk,
            _ticker: ticker,
        })
    }

    fn store(&self) -> Result<Store<StoreState>, PluginError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes_max)
            .instances(4)
            .memories(2)
            .tables(4)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            StoreState {
                limits,
                peak_memory: 0,
            },
        );
        store.limiter(|s| s);
        store
            .set_fuel(self.limits.fuel_per_call)
            .map_err(|e| PluginError::new(PluginErrorKind::Trap, format!("{e:#}")))?;
        // Set right before the call: the deadline counts from now.
        let ticks = (self.limits.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        Ok(store)
    }

    /// The compiled component for `bytes`: from memory, from disk, or compiled now.
    fn compile(&self, bytes: &[u8], hash: [u8; 32]) -> Result<Component, PluginError> {
        if let Some(c) = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
        {
            return Ok(c.clone());
        }
        let component = match self.disk.as_ref().and_then(|d| d.load(&self.engine, &hash)) {
            Some(c) => c,
            None => {
                let c = Component::new(&self.engine, bytes)
                    .map_err(|e| refused(format!("not a valid WebAssembly component: {e:#}")))?;
                if let Some(d) = &self.disk {
                    d.store(&hash, &c);
                }
                c
            }
        };
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(hash, component.clone());
        Ok(component)
    }

    /// Validates and compiles a plugin, and reads its `info` under the same
    /// limits as any call. Refused: a core module, a component with any
    /// import, one that is not the normalizer world, invalid `info`.
    pub fn install(&self, bytes: &[u8]) -> Result<InstalledPlugin, PluginError> {
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(refused("not WebAssembly: the \\0asm header is missing"));
        }
        if bytes[4..8] == [1, 0, 0, 0] {
            return Err(refused(
                "a core WebAssembly module, not a component: turn it into a component \
                 of the walletlog:normalizer world (wit-component)",
            ));
        }
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let component = self.compile(bytes, hash)?;
        let ty = component.component_type();
        let imports: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        if !imports.is_empty() {
            return Err(refused(format!(
                "the component imports {}; a normalizer may import nothing",
                imports.join(", ")
            )));
        }
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| refused(format!("the component cannot be instantiated: {e:#}")))?;
        // The newest world first: a 1.1.0 component does not fit 1.0.0.
        let pre = match v1_1::NormalizerPre::new(instance_pre.clone()) {
            Ok(p) => Pre::V1_1(p),
            Err(newer) => match v1_0::NormalizerPre::new(instance_pre) {
                Ok(p) => Pre::V1_0(p),
                Err(e) => {
                    return Err(refused(format!(
                        "not a component of walletlog:normalizer@1.1.0 ({newer:#}) \
                         or @1.0.0 ({e:#})"
                    )))
                }
            },
        };
        let mut store = self.store()?;
        let raw = pre
            .info(&mut store)
            .map_err(|e| call_error(e, &self.limits).for_plugin("(installing)"))?;
        let info = plugin_info(raw)?;
        Ok(InstalledPlugin {
            info,
            content_hash: hash,
            contract: pre.contract(),
            pre,
        })
    }

    /// Runs `plugin` on `webhook` in a fresh instance and returns what it
    /// produced, within the output caps (not yet validated as events).
    pub fn normalize(
        &self,
        plugin: &InstalledPlugin,
        webhook: &Webhook,
    ) -> Result<Vec<NormalizedEvent>, PluginError> {
        self.normalize_metered(plugin, webhook, &mut 0)
    }

    /// [`normalize`](Self::normalize), setting `fuel_used` to the fuel the
    /// call consumed (0 when it was refused before it ran).
    pub fn normalize_metered(
        &self,
        plugin: &InstalledPlugin,
        webhook: &Webhook,
        fuel_used: &mut u64,
    ) -> Result<Vec<NormalizedEvent>, PluginError> {
        let mut cost = CallCost::default();
        let out = self.normalize_measured(plugin, webhook, &mut cost);
        *fuel_used = cost.fuel;
        out
    }

    /// The limits this host runs every call under.
    pub fn limits(&self) -> &PluginLimits {
        &self.limits
    }

    /// [`normalize`](Self::normalize), recording what the call cost in
    /// `cost` (zeros when it was refused before it ran): what `walletlog
    /// plugin run` shows a plugin author.
    pub fn normalize_measured(
        &self,
        plugin: &InstalledPlugin,
        webhook: &Webhook,
        cost: &mut CallCost,
    ) -> Result<Vec<NormalizedEvent>, PluginError> {
        *cost = CallCost::default();
        let started = std::time::Instant::now();
        let name = format!("{}@{}", plugin.info.provider, plugin.info.version);
        let size = webhook.body.len()
            + webhook.url.as_ref().map_or(0, String::len)
            + webhook
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if size > self.limits.request_bytes_max {
            return Err(PluginError::new(
                PluginErrorKind::RequestTooLarge,
                format!(
                    "the webhook is {size} bytes; at most {} may be sent to a plugin",
                    self.limits.request_bytes_max
                ),
            )
            .for_plugin(name));
        }
        let mut store = self.store()?;
        let result = plugin.pre.normalize(&mut store, webhook);
        cost.wall = started.elapsed();
        cost.fuel = self
            .limits
            .fuel_per_call
            .saturating_sub(store.get_fuel().unwrap_or(0));
        cost.peak_memory_bytes = store.data().peak_memory;
        let result = result.map_err(|e| call_error(e, &self.limits).for_plugin(name.clone()))?;
        let events = match result {
            Ok(events) => events,
            Err((kind, message)) => {
                return Err(PluginError::new(kind, truncate(&message)).for_plugin(name))
            }
        };
        if events.len() > self.limits.events_max {
            return Err(PluginError::new(
                PluginErrorKind::OutputTooLarge,
                format!(
                    "returned {} events; at most {} allowed",
                    events.len(),
                    self.limits.events_max
                ),
            )
            .for_plugin(name));
        }
        let bytes: usize = events
            .iter()
            .map(|e| {
                e.wallet_id.len()
                    + e.amount.len()
                    + e.currency.len()
                    + e.provider_event_id.len()
                    + e.occurred_at.as_ref().map_or(0, String::len)
                    + e.metadata.len()
            })
            .sum();
        cost.output_bytes = bytes;
        if bytes > self.limits.output_bytes_max {
            return Err(PluginError::new(
                PluginErrorKind::OutputTooLarge,
                format!(
                    "returned {bytes} bytes of events; at most {} allowed",
                    self.limits.output_bytes_max
                ),
            )
            .for_plugin(name));
        }
        Ok(events)
    }
}

/// Whether compiling may use the process-wide thread pool wasmtime
/// compiles in parallel on. A child forked from a process that started
/// that pool has none of its threads, and work sent there would wait
/// forever: such a child compiles on the calling thread.
fn may_compile_in_parallel() -> bool {
    static POOL_OWNER: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *POOL_OWNER.get_or_init(std::process::id) == std::process::id()
}

/// The thread that increments the engine's epoch every tick. Dropping it
/// stops the thread and waits for it, so that closing a ledger leaves no
/// thread of its own behind.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: &Engine) -> Option<EpochTicker> {
        let weak = engine.weak();
        let (stop, stopped) = mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("walletlog-plugin-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            });
        match spawned {
            Ok(thread) => Some(EpochTicker {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                // Fuel still bounds every call; only the wall-clock backstop is lost.
                tracing::error!(target: "walletlog::plugins", "cannot start the epoch thread: {e}");
                None
            }
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Disconnecting the channel wakes the thread, which then returns.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Plugin text shown in errors is cut short: it is untrusted and unbounded.
fn truncate(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn call_error(e: wasmtime::Error, limits: &PluginLimits) -> PluginError {
    let kind_and_text = match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => (
            PluginErrorKind::OutOfFuel,
            format!("used up its {} fuel", limits.fuel_per_call),
        ),
        Some(Trap::Interrupt) => (
            PluginErrorKind::Timeout,
            format!(
                "ran past its {} ms deadline",
                limits.call_timeout.as_millis()
            ),
        ),
        Some(Trap::StackOverflow) => (
            PluginErrorKind::Trap,
            format!("overflowed its {} KiB stack", limits.stack_bytes_max >> 10),
        ),
        Some(trap) => (PluginErrorKind::Trap, format!("trapped: {trap}")),
        None => {
            let text = format!("{e:#}");
            if text.contains("growing memory") || text.contains("memory minimum size") {
                (
                    PluginErrorKind::OutOfMemory,
                    format!(
                        "needed more than its {} MiB of memory",
                        limits.memory_bytes_max >> 20
                    ),
                )
            } else {
                (PluginErrorKind::Trap, truncate(&text))
            }
        }
    };
    PluginError::new(kind_and_text.0, kind_and_text.1)
}

/// Checks what `info` returned.
fn plugin_info(
    (provider, version, signature): (String, String, SignatureScheme),
) -> Result<PluginInfo, PluginError> {
    let provider = Provider::new(provider.as_str()).map_err(|e| refused(format!("info: {e}")))?;
    if version.is_empty()
        || version.len() > 64
        || version.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(refused(
            "info: version must be 1 to 64 printable characters without spaces",
        ));
    }
    if let SignatureScheme::Hmac(h) = &signature {
        let header_ok = !h.header.is_empty()
            && h.header.len() <= 128
            && h.header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !header_ok {
            return Err(refused(
                "info: the HMAC header name is not a valid header name",
            ));
        }
        if h.prefix.as_ref().is_some_and(|p| p.len() > 32) {
            return Err(refused("info: the HMAC prefix is longer than 32 bytes"));
        }
    }
    Ok(PluginInfo {
        provider: provider.as_str().to_owned(),
        version,
        signature,
    })
}

impl std::fmt::Debug for InstalledPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstalledPlugin")
            .field("info", &self.info)
            .field("contract", &self.contract)
            .finish()
    }
}
