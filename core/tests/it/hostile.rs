//! Hostile plugins, built from source (Rust in `tests/hostile-plugins/rust`,
//! WAT in `tests/hostile-plugins/wat`). Each ends in a typed `PluginError`
//! or a refusal at install, within a second, stores nothing, and leaves
//! the host healthy for the next webhook.

use std::time::{Duration, Instant};

use walletlog::{Error, Ledger, PluginErrorKind, PluginLimits, Webhook};

use super::util::*;
use super::webhooks::plugin;

fn wat(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../tests/hostile-plugins/wat/{name}.wat",
        env!("CARGO_MANIFEST_DIR")
    );
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn hostile_ledger(limits: PluginLimits) -> Ledger {
    let l = Ledger::open(
        ":memory:",
        walletlog::Options {
            plugin_limits: limits,
            ..Default::default()
        },
    )
    .unwrap();
    l.allow_unsigned("hostile").unwrap();
    let info = l.install_plugin(&plugin("hostile")).unwrap();
    assert_eq!(info.actor(), "plugin:hostile@6.6.6");
    l
}

fn attack(l: &Ledger, body: &str) -> (Result<Vec<walletlog::IngestResult>, Error>, Duration) {
    let start = Instant::now();
    let r = l.ingest_webhook(
        "hostile",
        &Webhook {
            headers: vec![],
            body: body.as_bytes().to_vec(),
            url: None,
        },
    );
    (r, start.elapsed())
}

fn plugin_kind(r: Result<Vec<walletlog::IngestResult>, Error>) -> (PluginErrorKind, String) {
    match r {
        Err(Error::Plugin(p)) => (p.kind, p.to_string()),
        other => panic!("expected a plugin error, got {other:?}"),
    }
}

#[test]
fn every_attack_ends_in_a_typed_error_and_the_host_stays_healthy() {
    let l = hostile_ledger(PluginLimits::default());
    let cases = [
        ("loop", PluginErrorKind::OutOfFuel, "fuel"),
        ("grow", PluginErrorKind::OutOfMemory, "memory"),
        ("recurse", PluginErrorKind::Trap, "stack"),
        ("recurse-shadow", PluginErrorKind::Trap, "out of bounds"),
        ("trap", PluginErrorKind::Trap, "trapped"),
        ("huge", PluginErrorKind::OutputTooLarge, "bytes"),
        ("many", PluginErrorKind::OutputTooLarge, "events"),
        ("negative", PluginErrorKind::InvalidOutput, "amount"),
        ("currency", PluginErrorKind::InvalidOutput, "currency"),
        ("timestamp", PluginErrorKind::InvalidOutput, "occurred_at"),
        ("metadata", PluginErrorKind::InvalidOutput, "metadata"),
        ("utf8", PluginErrorKind::Trap, "utf-8"),
        ("nonsense", PluginErrorKind::Unsupported, "no attack"),
    ];
    for (i, (body, kind, words)) in cases.iter().enumerate() {
        let stored = (all_events(&l).len(), all_audit(&l).len());
        let (r, took) = attack(&l, body);
        let (got, text) = plugin_kind(r);
        assert_eq!(got, *kind, "{body}: {text}");
        assert!(
            text.to_lowercase().contains(words),
            "{body}: {text:?} lacks {words:?}"
        );
        assert!(text.contains("hostile@6.6.6"), "{text}");
        assert!(took < Duration::from_secs(1), "{body} took {took:?}");
        assert_eq!(
            (all_events(&l).len(), all_audit(&l).len()),
            stored,
            "{body}: something was stored"
        );
        // The next webhook runs normally in a fresh instance.
        let (ok, _) = attack(&l, "ok");
        let ok = ok.unwrap_or_else(|e| panic!("after {body}: {e}"));
        assert_eq!(ok.len(), 1);
        assert_eq!(
            ok[0].created(),
            i == 0,
            "only the first `ok` creates; later ones are duplicates"
        );
    }
    assert_eq!(all_events(&l).len(), 1);
    assert!(l.verify_audit().unwrap().ok);
}

/// Every call runs in memory as fresh as the first: nothing one webhook's
/// run wrote (statics, zeroed statics, the heap) is there for the next.
#[test]
fn no_call_sees_what_an_earlier_one_left_in_memory() {
    let l = hostile_ledger(PluginLimits::default());
    for i in 0..20 {
        // A body of its own each time: a new delivery, run anew.
        let (r, _) = attack(&l, &format!("remember {i}"));
        let results = r.unwrap_or_else(|e| panic!("call {i}: {e}"));
        assert_eq!(
            results[0]
                .event
                .provider_event_id
                .as_ref()
                .map(|p| p.as_str()),
            Some("remember-0-0-0"),
            "call {i} saw an earlier call's memory"
        );
        assert_eq!(results[0].created(), i == 0, "call {i}");
    }
    assert_eq!(all_events(&l).len(), 1);
}

#[test]
fn the_wall_clock_deadline_stops_what_fuel_does_not() {
    let limits = PluginLimits {
        fuel_per_call: u64::MAX / 4,
        call_timeout: Duration::from_millis(200),
        ..PluginLimits::default()
    };
    let l = hostile_ledger(limits);
    let (r, took) = attack(&l, "loop");
    let (kind, text) = plugin_kind(r);
    assert_eq!(kind, PluginErrorKind::Timeout, "{text}");
    assert!(text.contains("200 ms"), "{text}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(attack(&l, "ok").0.unwrap().len(), 1);
}

#[test]
fn requests_over_the_limit_never_reach_the_plugin() {
    let l = hostile_ledger(PluginLimits {
        request_bytes_max: 1024,
        ..PluginLimits::default()
    });
    let (r, _) = attack(&l, &"x".repeat(2048));
    assert_eq!(plugin_kind(r).0, PluginErrorKind::RequestTooLarge);
}

#[test]
fn a_plugin_whose_info_never_returns_is_refused_at_install() {
    let l = Ledger::in_memory();
    l.allow_unsigned("hostile").unwrap();
    let start = Instant::now();
    let Err(Error::Plugin(p)) = l.install_plugin(&plugin("hostile-info-loop")) else {
        panic!("installed")
    };
    assert_eq!(p.kind, PluginErrorKind::OutOfFuel, "{p}");
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(l.plugin("hostile").is_none());
}

#[test]
fn components_that_are_not_normalizers_are_refused_at_install() {
    let l = Ledger::in_memory();
    for (name, words) in [
        ("core-module", "core WebAssembly module, not a component"),
        ("imports-custom", "imports steal-secret"),
        ("imports-wasi", "imports wasi:cli/environment@0.2.0"),
        (
            "empty-world",
            "not a component of walletlog:normalizer@1.1.0",
        ),
        (
            "wrong-world",
            "not a component of walletlog:normalizer@1.1.0",
        ),
    ] {
        let Err(Error::Plugin(p)) = l.install_plugin(&wat(name)) else {
            panic!("{name} installed")
        };
        assert_eq!(p.kind, PluginErrorKind::Refused, "{name}: {p}");
        assert!(p.to_string().contains(words), "{name}: {p}");
    }
    for garbage in [
        &b""[..],
        b"\0asm",
        b"not wasm at all",
        &[0u8, 97, 115, 109, 13, 0, 1, 0, 0xff, 0xff][..],
    ] {
        let Err(Error::Plugin(p)) = l.install_plugin(garbage) else {
            panic!("garbage installed")
        };
        assert_eq!(p.kind, PluginErrorKind::Refused);
    }
    // A plugin that declares no signature scheme needs unsigned allowed first.
    let Err(Error::Plugin(p)) = l.install_plugin(&plugin("hostile")) else {
        panic!("installed unsigned")
    };
    assert!(
        p.to_string().contains(
            "declare provider hostile's scheme in the plugin, or allow unsigned webhooks"
        ),
        "{p}"
    );
}
