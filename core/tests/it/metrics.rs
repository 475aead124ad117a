//! The ledger's Prometheus metrics, read back from `metrics_text` after
//! real work on a SQLite file: what each call counts, and what it must not.

use std::time::Duration;

use walletlog::{Ledger, Options, Secret, SqliteConfig, Webhook};

use super::util::*;
use super::webhooks::{plugin, stripe_envelope, stripe_object, stripe_webhook, STRIPE_SECRET};

/// The value of one series (its name with labels, as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        Some(rest.split(' ').next()?.parse().unwrap())
    })
}

fn count(text: &str, series: &str) -> f64 {
    value(text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
}

#[test]
fn ingestions_are_counted_by_outcome_and_actor_kind() {
    let (_dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    let fresh = l.metrics_text();
    assert_eq!(
        value(&fresh, "walletlog_commit_duration_seconds_count"),
        Some(0.0)
    );
    assert_eq!(
        value(
            &fresh,
            "walletlog_ingestions_total{outcome=\"created\",actor_kind=\"api\"}"
        ),
        Some(0.0)
    );

    l.ingest(&deposit("w1", "p1", "10", 1)).unwrap();
    l.ingest(&deposit("w1", "p1", "10", 1)).unwrap(); // a duplicate
    l.ingest(&deposit("w1", "p1", "99", 1)).unwrap_err(); // a conflict
    let batch: Vec<_> = (2..5)
        .map(|i| deposit("w1", &format!("p{i}"), "1", i))
        .collect();
    l.ingest_batch(&batch).unwrap();

    let t = l.metrics_text();
    let series = |outcome: &str| {
        format!("walletlog_ingestions_total{{outcome=\"{outcome}\",actor_kind=\"api\"}}")
    };
    assert_eq!(count(&t, &series("created")), 4.0);
    assert_eq!(count(&t, &series("duplicate")), 1.0);
    assert_eq!(count(&t, &series("conflict")), 1.0);
    assert_eq!(count(&t, &series("storage")), 0.0);
    // Four commits (the conflict's audit record is one): three of one
    // event, one of three.
    assert_eq!(count(&t, "walletlog_commit_duration_seconds_count"), 4.0);
    assert_eq!(count(&t, "walletlog_commit_events_sum"), 6.0);
    assert_eq!(count(&t, "walletlog_commit_events_bucket{le=\"1.0\"}"), 3.0);
    assert!(t.contains("# TYPE walletlog_commit_duration_seconds histogram"));
    assert!(t.ends_with("# EOF\n"));
    // Each ledger counts its own.
    let other = sqlite_ledger(&path);
    assert_eq!(count(&other.metrics_text(), &series("created")), 0.0);
}

#[test]
fn storage_errors_are_counted_by_kind() {
    let (_dir, path) = temp_db();
    let l = Ledger::open(
        &path,
        Options {
            sqlite: SqliteConfig {
                busy_timeout: Duration::from_millis(100),
                ..SqliteConfig::default()
            },
            ..Options::default()
        },
    )
    .unwrap();
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    l.ingest(&deposit("w1", "p1", "10", 1)).unwrap_err();
    blocker.execute_batch("ROLLBACK").unwrap();
    let t = l.metrics_text();
    assert_eq!(
        count(&t, "walletlog_storage_errors_total{kind=\"busy\"}"),
        1.0
    );
    assert_eq!(
        count(
            &t,
            "walletlog_ingestions_total{outcome=\"storage\",actor_kind=\"api\"}"
        ),
        1.0
    );
    assert_eq!(count(&t, "walletlog_commit_duration_seconds_count"), 0.0);
    assert!(all_events(&l).is_empty());
}

#[test]
fn webhook_deliveries_and_plugin_calls_are_counted_by_provider() {
    let (_dir, path) = temp_db();
    let l = sqlite_ledger(&path);
    l.install_plugin(&plugin("stripe")).unwrap();
    l.set_webhook_secret("stripe", Secret::new(STRIPE_SECRET))
        .unwrap();
    let body = stripe_envelope(
        "evt_metrics",
        "charge.succeeded",
        &stripe_object("object_charge.fixtures3.json"),
    );
    l.ingest_webhook("stripe", &stripe_webhook(&body)).unwrap();
    l.ingest_webhook("stripe", &stripe_webhook(&body)).unwrap(); // a replay
    let mut forged = stripe_webhook(&body);
    forged.body.push(b' ');
    l.ingest_webhook("stripe", &forged).unwrap_err();
    let stranger = Webhook {
        headers: vec![],
        body: b"{}".to_vec(),
        url: None,
    };
    l.ingest_webhook("no-such-provider", &stranger).unwrap_err();

    let t = l.metrics_text();
    let delivery = |provider: &str, outcome: &str| {
        format!(
            "walletlog_webhook_deliveries_total{{provider=\"{provider}\",outcome=\"{outcome}\"}}"
        )
    };
    assert_eq!(count(&t, &delivery("stripe", "ingested")), 2.0);
    assert_eq!(count(&t, &delivery("stripe", "signature_failed")), 1.0);
    assert_eq!(count(&t, &delivery("unknown", "not_installed")), 1.0);
    assert_eq!(count(&t, &delivery("stripe", "malformed")), 0.0);
    assert!(
        !t.contains("no-such-provider"),
        "a sender cannot name a series"
    );
    // The plugin ran twice: a forged delivery never reaches it.
    assert_eq!(
        count(
            &t,
            "walletlog_plugin_call_duration_seconds_count{provider=\"stripe\"}"
        ),
        2.0
    );
    let fuel = count(&t, "walletlog_plugin_call_fuel_sum{provider=\"stripe\"}");
    assert!(fuel > 0.0, "fuel consumed: {fuel}");
    assert_eq!(
        count(
            &t,
            "walletlog_ingestions_total{outcome=\"created\",actor_kind=\"plugin\"}"
        ),
        1.0
    );
    assert_eq!(
        count(
            &t,
            "walletlog_ingestions_total{outcome=\"duplicate\",actor_kind=\"plugin\"}"
        ),
        1.0
    );
}
