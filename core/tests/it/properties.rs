//! Property tests: balance reconstruction is independent of arrival order
//! and equals a plain reference fold; cursor paging yields every event once.

use proptest::prelude::*;
use walletlog::{
    Amount, Currency, EventType, Ledger, ListQuery, NewEvent, Order, Provider, ProviderEventId,
};

use super::util::*;

#[derive(Debug, Clone)]
struct Spec {
    ty: EventType,
    mantissa: u64,
    scale: u32,
    currency: &'static str,
    at: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..8usize,
        1..1_000_000_000_000u64,
        0..=18u32,
        prop::sample::select(vec!["USD", "JPY", "USDC"]),
        // Several hours, with collisions.
        0..(6 * 3600i64),
    )
        .prop_map(|(t, mantissa, scale, currency, at)| Spec {
            ty: EventType::ALL[t],
            mantissa,
            scale,
            currency,
            at,
        })
}

fn amount_text(mantissa: u64, scale: u32) -> String {
    let digits = format!("{:0>width$}", mantissa, width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

fn new_event(i: usize, s: &Spec) -> NewEvent {
    NewEvent::new(
        wallet("w"),
        Provider::new("p").unwrap(),
        s.ty,
        Amount::parse(&amount_text(s.mantissa, s.scale)).unwrap(),
        Currency::new(s.currency).unwrap(),
        ts(s.at),
    )
    .with_provider_event_id(ProviderEventId::new(format!("e{i}")).unwrap())
}

/// The reference: integer atto-units (10^-18), folded by the balance table of docs/events.md.
fn reference(specs: &[Spec], as_of: Option<i64>) -> Vec<(String, String, String, u64)> {
    let mut by: std::collections::BTreeMap<&str, (i128, i128, u64)> = Default::default();
    for s in specs.iter().filter(|s| as_of.is_none_or(|t| s.at <= t)) {
        let atto = s.mantissa as i128 * 10i128.pow(18 - s.scale);
        let e = by.entry(s.currency).or_default();
        let (da, dh) = match s.ty {
            EventType::Deposit | EventType::TransferIn | EventType::Refund => (atto, 0),
            EventType::Withdrawal | EventType::TransferOut | EventType::Fee => (-atto, 0),
            EventType::Hold => (-atto, atto),
            EventType::Release => (atto, -atto),
        };
        e.0 += da;
        e.1 += dh;
        e.2 += 1;
    }
    let fmt = |v: i128| -> String {
        let sign = if v < 0 { "-" } else { "" };
        let text = amount_text_i128(v.unsigned_abs());
        format!("{sign}{text}")
    };
    by.into_iter()
        .map(|(c, (a, h, n))| (c.to_string(), fmt(a), fmt(h), n))
        .collect()
}

fn amount_text_i128(atto: u128) -> String {
    let int = atto / 10u128.pow(18);
    let frac = atto % 10u128.pow(18);
    if frac == 0 {
        int.to_string()
    } else {
        format!("{int}.{}", format!("{frac:018}").trim_end_matches('0'))
    }
}

fn observed(l: &Ledger, as_of: Option<i64>) -> Vec<(String, String, String, u64)> {
    l.balance(&wallet("w"), as_of.map(ts))
        .unwrap()
        .into_iter()
        .map(|b| {
            (
                b.currency.to_string(),
                b.available.to_string(),
                b.held.to_string(),
                b.event_count,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn balance_is_order_independent_and_exact(
        specs in prop::collection::vec(spec(), 1..60),
        seed in any::<u64>(),
        as_of in prop::option::of(-10..(7 * 3600i64)),
    ) {
        let events: Vec<_> = specs.iter().enumerate().map(|(i, s)| new_event(i, s)).collect();
        let in_order = Ledger::in_memory();
        in_order.ingest_batch(&events).unwrap();
        // Another arrival order, one event at a time.
        let mut shuffled: Vec<_> = events.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let other = Ledger::in_memory();
        for e in &shuffled {
            other.ingest(e).unwrap();
        }
        let expected = reference(&specs, as_of);
        prop_assert_eq!(&observed(&in_order, as_of), &expected);
        prop_assert_eq!(&observed(&other, as_of), &expected);
        prop_assert_eq!(observed(&in_order, None), reference(&specs, None));
    }

    #[test]
    fn cursor_paging_yields_every_event_once(
        ats in prop::collection::vec(0..20i64, 0..80),
        limit in 1..15usize,
        desc in any::<bool>(),
        fee_only in any::<bool>(),
    ) {
        paging_yields_every_event_once(&Ledger::in_memory(), &ats, limit, desc, fee_only)?;
    }
}

/// Ingests events at `ats` into `l`, then pages through them `limit` at a
/// time (only fees when `fee_only`): every event comes once, in order, and
/// every page but the last is full.
fn paging_yields_every_event_once(
    l: &Ledger,
    ats: &[i64],
    limit: usize,
    desc: bool,
    fee_only: bool,
) -> Result<(), TestCaseError> {
    let events: Vec<_> = ats
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let ty = if i % 2 == 0 {
                EventType::Deposit
            } else {
                EventType::Fee
            };
            ev("w", &format!("e{i}"), ty, "1", "USD", *at)
        })
        .collect();
    l.ingest_batch(&events).unwrap();
    let order = if desc { Order::Desc } else { Order::Asc };
    let mut base = ListQuery::new(wallet("w"))
        .order(order)
        .limit(limit)
        .unwrap();
    if fee_only {
        base = base.event_types(vec![EventType::Fee]).unwrap();
    }
    let mut seen = Vec::new();
    let mut q = base.clone();
    loop {
        let page = l.list(&q).unwrap();
        prop_assert!(page.events.len() <= limit);
        seen.extend(page.events.iter().map(|e| (e.occurred_at, e.sequence)));
        match page.next_cursor {
            Some(c) => {
                prop_assert_eq!(page.events.len(), limit);
                q = base.clone().cursor(&c).unwrap();
            }
            None => break,
        }
    }
    let mut expected: Vec<_> = all_events(l)
        .into_iter()
        .filter(|e| !fee_only || e.event_type == EventType::Fee)
        .map(|e| (e.occurred_at, e.sequence))
        .collect();
    expected.sort();
    if desc {
        expected.reverse();
    }
    prop_assert_eq!(seen, expected);
    Ok(())
}

/// Ingests `specs` (newest first) into `l`; its balances, now and as of
/// `as_of`, must equal the reference fold, and its audit trail verify.
fn balance_matches_the_reference(
    l: &Ledger,
    specs: &[Spec],
    as_of: i64,
) -> Result<(), TestCaseError> {
    for (i, s) in specs.iter().enumerate().rev() {
        l.ingest(&new_event(i, s)).unwrap();
    }
    prop_assert_eq!(observed(l, Some(as_of)), reference(specs, Some(as_of)));
    prop_assert_eq!(observed(l, None), reference(specs, None));
    prop_assert!(l.verify_audit().unwrap().ok);
    Ok(())
}

proptest! {
    // Fewer cases on a real file: each one creates a SQLite database.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn sqlite_balance_matches_the_reference(
        specs in prop::collection::vec(spec(), 1..40),
        as_of in -10..(7 * 3600i64),
    ) {
        let (_dir, path) = temp_db();
        balance_matches_the_reference(&sqlite_ledger(&path), &specs, as_of)?;
    }
}

#[cfg(feature = "postgres")]
proptest! {
    // Fewer cases on a real server: each one creates a schema.
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn postgres_balance_matches_the_reference(
        specs in prop::collection::vec(spec(), 1..40),
        as_of in -10..(7 * 3600i64),
    ) {
        balance_matches_the_reference(&pg_ledger("prop_balance"), &specs, as_of)?;
    }

    #[test]
    fn postgres_cursor_paging_yields_every_event_once(
        ats in prop::collection::vec(0..20i64, 0..60),
        limit in 1..15usize,
        desc in any::<bool>(),
        fee_only in any::<bool>(),
    ) {
        paging_yields_every_event_once(&pg_ledger("prop_pages"), &ats, limit, desc, fee_only)?;
    }
}
