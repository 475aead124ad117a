//! `walletlog inbox list|show|replay`: the webhook inbox and its dead letters.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use walletlog::{
    json as wljson, DeliveryId, Provider, RawInboxQuery, RawReplaySelection, RawTime, ReplayReport,
    ReplaySelection,
};

use super::{command_words, count, next_page_command, open, print_json};
use crate::failure::{Failure, EXIT_REFUSED};
use crate::{table, Global, Result};

#[derive(Subcommand, Debug)]
pub enum InboxCommand {
    /// One page of deliveries, newest first: every webhook that passed its
    /// signature check, with what became of it.
    List(ListArgs),
    /// One delivery in full: headers, body and every attempt.
    Show {
        /// The delivery's id (from `inbox list`).
        delivery_id: String,
    },
    /// Run stored deliveries through a plugin again, exactly once by
    /// dedupe: a delivery refused by an older plugin creates its events, one
    /// already ingested gives duplicates. Signatures are not checked again
    /// (they were at receipt). Exits 3 when some delivery still fails.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only this provider's deliveries.
    #[arg(long)]
    provider: Option<String>,
    /// Only deliveries with this verdict: ingested, ignored, unsupported,
    /// malformed, plugin_failed, invalid_output, conflict.
    #[arg(long)]
    verdict: Option<String>,
    /// Only deliveries first received at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only deliveries first received before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Deliveries per page, 1..=1000.
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Continue after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// `desc` (newest first) or `asc`.
    #[arg(long, default_value = "desc")]
    order: String,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The plugin to run them through (.wasm component); repeat for
    /// deliveries of several providers.
    #[arg(long, value_name = "FILE", required = true)]
    plugin: Vec<PathBuf>,
    /// Deliveries to replay, by id (or with `--id`, repeatable). Without
    /// ids, `--provider` or `--verdict`: the dead letters (but conflicts) of
    /// each plugin's provider.
    #[arg(value_name = "DELIVERY_ID", conflicts_with_all = ["provider", "verdict"])]
    delivery_ids: Vec<String>,
    /// A delivery to replay; repeat for several.
    #[arg(long = "id", value_name = "DELIVERY_ID", conflicts_with_all = ["provider", "verdict"])]
    ids: Vec<String>,
    /// Replay this provider's deliveries: its dead letters (but conflicts),
    /// or with `--verdict` those with that verdict.
    #[arg(long)]
    provider: Option<String>,
    /// Replay the deliveries with this verdict (`ingested` and `conflict`
    /// only when named here) of each `--plugin`'s provider, or of
    /// `--provider`.
    #[arg(long)]
    verdict: Option<String>,
    /// Install a plugin that declares no signature scheme (replays check none).
    #[arg(long)]
    unsigned: bool,
}

pub(super) fn run(g: &Global, command: &InboxCommand) -> Result<u8> {
    match command {
        InboxCommand::List(a) => list(g, a),
        InboxCommand::Show { delivery_id } => show(g, delivery_id),
        InboxCommand::Replay(a) => replay(g, a),
    }
}

fn list(g: &Global, a: &ListArgs) -> Result<u8> {
    let query = RawInboxQuery {
        provider: a.provider.clone(),
        verdict: a.verdict.clone(),
        since: a.since.clone().map(RawTime::Rfc3339),
        until: a.until.clone().map(RawTime::Rfc3339),
        limit: Some(a.limit),
        order: Some(a.order.clone()),
        cursor: a.cursor.clone(),
    }
    .validate()?;
    let ledger = open(g, false)?;
    let page = ledger.inbox(&query)?;
    if g.json {
        print_json(&wljson::inbox_page(&page));
        return Ok(0);
    }
    if page.deliveries.is_empty() {
        println!("no deliveries in the inbox");
    } else {
        let rows: Vec<Vec<String>> = page
            .deliveries
            .iter()
            .map(|d| {
                let latest = d.latest();
                vec![
                    d.delivery_id.to_string(),
                    d.received_at.to_string(),
                    d.provider.to_string(),
                    latest.verdict.to_string(),
                    d.attempt_count.to_string(),
                    latest.plugin_version.clone(),
                    latest.event_ids.len().to_string(),
                    short(latest.reason.as_deref().unwrap_or("-"), 60),
                ]
            })
            .collect();
        table::print(
            &[
                "DELIVERY", "RECEIVED", "PROVIDER", "VERDICT", "ATTEMPTS", "PLUGIN", "EVENTS",
                "REASON",
            ],
            &rows,
            &["ATTEMPTS", "EVENTS"],
        );
    }
    if let Some(cursor) = &page.next_cursor {
        println!("more: {}", next_page_command(g, &a.same_query(cursor)));
    }
    Ok(0)
}

impl ListArgs {
    /// The arguments that ask for the same query (a cursor belongs to
    /// one), from `cursor` on.
    fn same_query(&self, cursor: &str) -> Vec<String> {
        command_words(
            &["inbox", "list"],
            &[
                ("limit", Some(&self.limit.to_string())),
                ("order", Some(&self.order)),
                ("provider", self.provider.as_deref()),
                ("verdict", self.verdict.as_deref()),
                ("since", self.since.as_deref()),
                ("until", self.until.as_deref()),
                ("cursor", Some(cursor)),
            ],
        )
    }
}

fn short(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let cut: String = text.chars().take(chars).collect();
    format!("{cut}...")
}

fn show(g: &Global, id: &str) -> Result<u8> {
    let id = DeliveryId::parse(id)?;
    let ledger = open(g, false)?;
    let Some(d) = ledger.delivery(&id)? else {
        return Err(walletlog::Error::NotFound {
            what: format!("delivery {id}"),
        }
        .into());
    };
    if g.json {
        print_json(&wljson::delivery(&d));
        return Ok(0);
    }
    let latest = d.latest();
    let rows = vec![
        vec!["delivery".into(), d.delivery_id.to_string()],
        vec!["provider".into(), d.provider.to_string()],
        vec!["received".into(), d.received_at.to_string()],
        vec!["verdict".into(), latest.verdict.to_string()],
        vec!["reason".into(), latest.reason.clone().unwrap_or("-".into())],
        vec!["url".into(), d.url.clone().unwrap_or("-".into())],
        vec![
            "body".into(),
            format!(
                "{} bytes, sha256 {}",
                d.body_bytes,
                walletlog::encoding::hex(&d.body_sha256)
            ),
        ],
    ];
    table::print(&["FIELD", "VALUE"], &rows, &[]);
    println!();
    let headers: Vec<Vec<String>> = d
        .headers
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    table::print(&["HEADER", "VALUE"], &headers, &[]);
    println!();
    let attempts: Vec<Vec<String>> = d
        .attempts
        .iter()
        .map(|a| {
            vec![
                a.at.to_string(),
                a.kind.as_str().to_owned(),
                a.plugin_version.clone(),
                a.verdict.to_string(),
                a.event_ids
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    table::print(
        &["AT", "KIND", "PLUGIN", "VERDICT", "EVENTS"],
        &attempts,
        &[],
    );
    if d.attempt_count > d.attempts.len() as u64 {
        println!(
            "({} attempts in all; the first and the latest {} are kept)",
            d.attempt_count,
            d.attempts.len() - 1
        );
    }
    println!();
    match &d.body {
        None => println!("body: dropped by retention (the delivery's events are in the ledger)"),
        Some(b) => match std::str::from_utf8(b) {
            Ok(text) => println!("body:\n{text}"),
            Err(_) => println!("body: {} bytes, not UTF-8 (see --json)", b.len()),
        },
    }
    Ok(0)
}

fn replay(g: &Global, a: &ReplayArgs) -> Result<u8> {
    let ids: Vec<String> = a.delivery_ids.iter().chain(&a.ids).cloned().collect();
    let chosen = RawReplaySelection {
        delivery_ids: (!ids.is_empty()).then_some(ids),
        provider: a.provider.clone(),
        verdict: a.verdict.clone(),
    }
    .validate()?;
    let ledger = open(g, false)?;
    let mut providers = Vec::with_capacity(a.plugin.len());
    for path in &a.plugin {
        let wasm = std::fs::read(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
        if a.unsigned {
            // A replay checks no signature: admitting a plugin that
            // declares none changes nothing else.
            let provider = walletlog::plugins::PluginHost::new(Default::default(), None)
                .and_then(|h| h.install(&wasm))
                .map(|p| p.info.provider)
                .map_err(walletlog::Error::Plugin)?;
            ledger.allow_unsigned(&provider)?;
        }
        providers.push(ledger.install_plugin(&wasm)?.provider);
    }
    if let Some(p) = &chosen.provider {
        if !providers.iter().any(|given| given == p.as_str()) {
            return Err(Failure::usage(format!(
                "no --plugin given is {p}'s: give its plugin to replay its deliveries \
                 (given: {})",
                providers.join(", ")
            )));
        }
    }
    let no_provider = chosen.delivery_ids.is_none() && chosen.provider.is_none();
    let report = if no_provider {
        // The dead letters (or those of `--verdict`) of the providers whose
        // plugins were given: the others' have no plugin to run through here.
        providers.sort();
        providers.dedup();
        let mut all = ReplayReport::default();
        for provider in providers {
            let one = ledger.replay(&ReplaySelection {
                provider: Some(Provider::new(&provider)?),
                verdict: chosen.verdict,
                ..ReplaySelection::default()
            })?;
            all.replayed += one.replayed;
            all.created += one.created;
            all.duplicates += one.duplicates;
            all.still_failing += one.still_failing;
            all.skipped += one.skipped;
            all.outcomes.extend(one.outcomes);
        }
        all
    } else {
        ledger.replay(&chosen)?
    };
    if g.json {
        print_json(&wljson::replay_report(&report));
    } else {
        println!(
            "replayed {}: {} created, {}, {} still failing",
            count(report.replayed, "delivery", "deliveries"),
            count(report.created, "event", "events"),
            count(report.duplicates, "duplicate", "duplicates"),
            report.still_failing
        );
        let rows: Vec<Vec<String>> = report
            .outcomes
            .iter()
            .map(|(id, v)| vec![id.to_string(), v.to_string()])
            .collect();
        if !rows.is_empty() {
            table::print(&["DELIVERY", "VERDICT"], &rows, &[]);
        }
    }
    Ok(if report.still_failing > 0 {
        EXIT_REFUSED
    } else {
        0
    })
}
