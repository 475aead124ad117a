//! A hostile plugin. The webhook body names the attack:
//!
//! | body | what the plugin does |
//! |---|---|
//! | `loop` | spins forever |
//! | `grow` | allocates until memory runs out |
//! | `recurse` | recurses in small frames until the wasm stack runs out |
//! | `recurse-shadow` | recurses in big frames until Rust's shadow stack leaves memory |
//! | `trap` | panics (an `unreachable` trap) |
//! | `huge` | returns one event with 4 MiB of metadata |
//! | `many` | returns 1,000 events (the cap is 256) |
//! | `negative`, `currency`, `timestamp`, `metadata` | returns an event that breaks one rule |
//! | `utf8` | returns a string that is not UTF-8 |
//! | `ok` | returns one valid event: the host must still be healthy |
//! | `remember ...` | reports what an earlier call left in its memory (a static counter, 64 pages of zeroed statics, the heap), then leaves marks in all three: its event's provider id is `remember-0-0-0` only in a fresh instance |
//!
//! Built with `--features info-loop`, `info` never returns.

use walletlog_plugin::{Error, Event, EventType, Normalizer, PluginInfo, Request, SignatureScheme};

pub struct Hostile;

fn valid(id: &str) -> Event {
    Event {
        wallet_id: "victim".into(),
        event_type: EventType::Deposit,
        amount: "1.00".into(),
        currency: "USD".into(),
        provider_event_id: id.into(),
        occurred_at: Some("2026-01-01T00:00:00Z".into()),
        metadata: "{}".into(),
    }
}

/// A step the optimizer cannot see through (nothing ever stores it).
static STEP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Deep recursion in small frames: exhausts the engine's wasm stack. Its
/// values stay in wasm locals (`black_box` would put them on Rust's shadow
/// stack in linear memory, which runs out first, a test of its own below).
#[inline(never)]
#[allow(unconditional_recursion)] // the point: it never stops
fn recurse_small(n: u64) -> u64 {
    let step = STEP.load(std::sync::atomic::Ordering::Relaxed);
    recurse_small(n + step).wrapping_mul(n) + step
}

/// Deep recursion with big frames: exhausts Rust's shadow stack in linear memory.
#[inline(never)]
#[allow(unconditional_recursion)] // the point: it never stops
fn recurse(depth: u64, sink: &mut [u64; 64]) -> u64 {
    sink[(depth % 64) as usize] = depth;
    let mut local = [depth; 64];
    local[0] = recurse(depth + 1, sink);
    std::hint::black_box(&local);
    local[(depth % 64) as usize]
}

impl Normalizer for Hostile {
    fn info() -> PluginInfo {
        if cfg!(feature = "info-loop") {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        PluginInfo::new("hostile", env!("CARGO_PKG_VERSION"), SignatureScheme::None)
    }

    fn normalize(request: &Request) -> Result<Vec<Event>, Error> {
        let attack = request.text()?;
        match attack.trim() {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recurse" => Ok(vec![valid(&recurse_small(0).to_string())]),
            "recurse-shadow" => {
                let mut sink = [0u64; 64];
                let depth = recurse(0, &mut sink);
                Ok(vec![valid(&depth.to_string())])
            }
            "trap" => panic!("hostile plugin panics"),
            "huge" => {
                let mut e = valid("huge");
                e.metadata = format!("{{\"pad\":\"{}\"}}", "x".repeat(4 << 20));
                Ok(vec![e])
            }
            "many" => Ok((0..1_000).map(|i| valid(&format!("many-{i}"))).collect()),
            "negative" => Ok(vec![Event {
                amount: "-5".into(),
                ..valid("negative")
            }]),
            "currency" => Ok(vec![Event {
                currency: "usd$".into(),
                ..valid("currency")
            }]),
            "timestamp" => Ok(vec![Event {
                occurred_at: Some("yesterday".into()),
                ..valid("timestamp")
            }]),
            "metadata" => Ok(vec![Event {
                metadata: "[1,2,3]".into(),
                ..valid("metadata")
            }]),
            "utf8" => Ok(vec![Event {
                wallet_id: not_utf8(),
                ..valid("utf8")
            }]),
            "ok" => Ok(vec![valid("ok")]),
            other if other.starts_with("remember") => Ok(vec![valid(&remember())]),
            other => Err(Error::Unsupported(format!("no attack named {other:?}"))),
        }
    }
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
const SCRATCH_PAGES: usize = 64;
static SCRATCH: std::sync::Mutex<[u8; SCRATCH_PAGES * 4096]> =
    std::sync::Mutex::new([0; SCRATCH_PAGES * 4096]);

/// `remember-<calls before this one>-<marked scratch pages>-<marked heap
/// bytes>`, read before this call leaves its own marks everywhere.
#[allow(unsafe_code)]
fn remember() -> String {
    use std::sync::atomic::Ordering;
    let calls = CALLS.fetch_add(1, Ordering::SeqCst);
    let mut scratch = SCRATCH.lock().unwrap_or_else(|p| p.into_inner());
    let pages = scratch.chunks(4096).filter(|p| p.contains(&0xAB)).count();
    for page in scratch.chunks_mut(4096) {
        page[7] = 0xAB;
    }
    // A fresh 64 KiB block, read before it is written, then marked and
    // freed. With the allocator's state reset but not the heap's pages, the
    // block comes back marked. (With all of memory kept, the counter and the
    // scratch pages show it.) SAFETY: not sound, on purpose: it reads memory
    // it did not initialize (bytes, read volatile), to see what the sandbox
    // left there.
    let layout = std::alloc::Layout::from_size_align(64 << 10, 8).expect("a valid layout");
    let heap = unsafe {
        let block = std::alloc::alloc(layout);
        if block.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let marked = (0..layout.size())
            .filter(|&i| block.add(i).read_volatile() == 0xCD)
            .count();
        std::ptr::write_bytes(block, 0xCD, layout.size());
        std::alloc::dealloc(block, layout);
        marked
    };
    format!("remember-{calls}-{pages}-{heap}")
}

/// A `String` holding bytes that are not UTF-8: the host must refuse it
/// when it reads the plugin's output.
#[allow(unsafe_code)]
fn not_utf8() -> String {
    // SAFETY: deliberately unsound; this plugin exists to break rules, and
    // the string is only ever read by the host, which validates it.
    unsafe { String::from_utf8_unchecked(vec![0xff, 0xfe, 0x80]) }
}

walletlog_plugin::export_normalizer!(Hostile);

#[cfg(test)]
mod tests {
    /// The detector itself: run twice in one process, the second call sees
    /// the first one's counter and its marks on every scratch page.
    #[test]
    fn remember_sees_an_earlier_call_that_shared_its_memory() {
        assert_eq!(super::remember(), "remember-0-0-0");
        assert!(super::remember().starts_with("remember-1-64-"));
    }
}
