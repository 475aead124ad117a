//! `walletlog webhook`, `walletlog plugin check` and `walletlog plugin
//! run`: plugins in their sandbox.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use walletlog::encoding::hex;
use walletlog::plugins::{CallCost, PluginHost, PluginLimits};
use walletlog::signature::{HmacSpec, SignatureScheme};
use walletlog::{json as wljson, Error, NewEvent, Secret, Timestamp, Webhook};

use super::{open, print_json, print_results, read_input, secret_from_env, secret_from_file};
use crate::failure::Failure;
use crate::{table, Global, Result};

#[derive(Args, Debug)]
pub struct WebhookArgs {
    /// The provider the webhook comes from (its plugin must declare it).
    #[arg(long)]
    provider: String,
    /// The provider's normalizer plugin (.wasm component).
    #[arg(long, value_name = "FILE")]
    plugin: PathBuf,
    /// The raw request body's file, byte for byte as received; `-` for
    /// standard input.
    body: PathBuf,
    /// A request header, `Name: value`; repeat for several.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// Read the provider's webhook secret from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["secret_file", "unsigned"])]
    secret_env: Option<String>,
    /// Read the provider's webhook secret from this file (one trailing newline is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "unsigned")]
    secret_file: Option<PathBuf>,
    /// Accept the webhook with no signature check (for providers that sign nothing).
    #[arg(long)]
    unsigned: bool,
    /// The URL the webhook was delivered to (some schemes sign it).
    #[arg(long)]
    url: Option<String>,
}

pub(super) fn webhook(g: &Global, a: &WebhookArgs) -> Result<u8> {
    let wasm = std::fs::read(&a.plugin)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", a.plugin.display())))?;
    let body = read_input(&a.body)?;
    let headers = parse_headers(&a.headers)?;
    let secret = match (&a.secret_env, &a.secret_file) {
        (Some(var), _) => Some(secret_from_env(var)?),
        (None, Some(file)) => Some(secret_from_file(file)?),
        (None, None) => None,
    };
    let ledger = open(g, true)?;
    if a.unsigned {
        ledger.allow_unsigned(&a.provider)?;
    }
    let info = ledger.install_plugin(&wasm)?;
    if info.provider != a.provider {
        return Err(Failure::usage(format!(
            "{} is the plugin of provider {:?}, not {:?}",
            a.plugin.display(),
            info.provider,
            a.provider
        )));
    }
    // After the plugin: a secret its scheme cannot decode is refused now.
    if let Some(secret) = secret {
        ledger.set_webhook_secret(&a.provider, Secret::new(secret))?;
    }
    let (delivery, results) = ledger.receive_webhook(
        &a.provider,
        &Webhook {
            headers,
            body,
            url: a.url.clone(),
        },
    );
    match (&delivery, g.json) {
        // A refused delivery is kept, to be replayed: say which, beside
        // the error.
        (Some(d), false) if !d.verdict().settled() => eprintln!(
            "walletlog: delivery {} ({}), kept in the inbox",
            d.delivery_id,
            d.verdict()
        ),
        _ => {}
    }
    let results = results?;
    if g.json {
        print_json(&wljson::ingest_results(&results));
        return Ok(0);
    }
    if results.is_empty() {
        println!(
            "{}@{}: the webhook moves no money; no event stored",
            info.provider, info.version
        );
    } else {
        print_results(&results);
    }
    if let Some(d) = &delivery {
        println!("delivery {} ({})", d.delivery_id, d.verdict());
    }
    Ok(0)
}

/// `--header "Name: value"` arguments as pairs.
fn parse_headers(args: &[String]) -> Result<Vec<(String, String)>> {
    args.iter()
        .map(|h| match h.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), value.trim_start().to_owned()))
            }
            _ => Err(Failure::usage(format!(
                "--header {h:?} is not `Name: value`"
            ))),
        })
        .collect()
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The plugin component (.wasm).
    file: PathBuf,
    /// The raw request body's file, byte for byte as the provider sends
    /// it; `-` for standard input.
    body: PathBuf,
    /// A request header, `Name: value`; repeat for several.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// The URL the webhook is delivered to.
    #[arg(long)]
    url: Option<String>,
}

/// Runs a plugin on one body, as a delivery would, and shows the events
/// (validated as the ledger would) or the error, and what the call cost
/// against the limits. Stores nothing; checks no signature.
pub(super) fn run(g: &Global, a: &RunArgs) -> Result<u8> {
    let wasm = std::fs::read(&a.file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", a.file.display())))?;
    let body = read_input(&a.body)?;
    let webhook = Webhook {
        headers: parse_headers(&a.headers)?,
        body,
        url: a.url.clone(),
    };
    let host = PluginHost::new(PluginLimits::default(), None).map_err(Error::Plugin)?;
    let plugin = host.install(&wasm).map_err(Error::Plugin)?;
    let info = &plugin.info;
    let mut cost = CallCost::default();
    let raw = host.normalize_measured(&plugin, &webhook, &mut cost);
    let limits = host.limits();
    let now = Timestamp::now();
    // Validated as a delivery's events are: the first refusal is the error.
    let outcome: std::result::Result<Vec<NewEvent>, Error> =
        raw.map_err(Error::Plugin).and_then(|raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, e)| {
                    e.validate(&info.provider, now).map_err(|v| {
                        Error::Plugin(
                            walletlog::PluginError::new(
                                walletlog::PluginErrorKind::InvalidOutput,
                                format!("event {i} is invalid: {v}"),
                            )
                            .for_plugin(format!("{}@{}", info.provider, info.version)),
                        )
                    })
                })
                .collect()
        });
    let warnings: Vec<String> = outcome
        .as_ref()
        .map(|events| events.iter().filter_map(decimals_warning).collect())
        .unwrap_or_default();
    let cost_rows = [
        (
            "fuel",
            cost.fuel as u128,
            limits.fuel_per_call as u128,
            "units",
        ),
        (
            "peak memory",
            cost.peak_memory_bytes as u128,
            limits.memory_bytes_max as u128,
            "bytes",
        ),
        (
            "wall time",
            cost.wall.as_micros(),
            limits.call_timeout.as_micros(),
            "us",
        ),
        (
            "output",
            cost.output_bytes as u128,
            limits.output_bytes_max as u128,
            "bytes",
        ),
    ];
    if g.json {
        let mut v = json!({
            "plugin": wljson::plugin_info(info),
            "contract": plugin.contract,
            "events": outcome.as_ref().ok().map(|events| events.iter().map(|e| {
                let mut v = wljson::event(&e.to_stored(
                    e.event_id.unwrap_or_else(walletlog::EventId::generate), now, 0));
                if let Some(o) = v.as_object_mut() {
                    o.remove("event_id");
                    o.remove("created_at");
                    o.remove("sequence");
                }
                v
            }).collect::<Vec<_>>()),
            "error": outcome.as_ref().err().map(wljson::error),
            "warnings": warnings,
        });
        v["cost"] = cost_rows
            .iter()
            .map(|(name, used, max, unit)| {
                (
                    name.replace(' ', "_"),
                    json!({"used": *used as u64, "limit": *max as u64, "unit": unit}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        print_json(&v);
    } else {
        println!(
            "{}@{} (contract {}), signature not checked, nothing stored",
            info.provider, info.version, plugin.contract
        );
        println!();
        match &outcome {
            Ok(events) if events.is_empty() => println!("no events: the webhook moves no money"),
            Ok(events) => {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            e.occurred_at.to_string()
                                + if e.occurred_at_estimated {
                                    " (estimated)"
                                } else {
                                    ""
                                },
                            e.wallet_id.to_string(),
                            e.event_type.as_str().to_owned(),
                            e.amount.to_string(),
                            e.currency.to_string(),
                            e.provider_event_id
                                .as_ref()
                                .map_or("-".into(), |k| k.to_string()),
                        ]
                    })
                    .collect();
                table::print(
                    &[
                        "OCCURRED_AT",
                        "WALLET",
                        "TYPE",
                        "AMOUNT",
                        "CURRENCY",
                        "PROVIDER_EVENT_ID",
                    ],
                    &rows,
                    &["AMOUNT"],
                );
            }
            Err(e) => println!("refused: {e}"),
        }
        println!();
        let rows: Vec<Vec<String>> = cost_rows
            .iter()
            .map(|(name, used, max, unit)| {
                vec![
                    name.to_string(),
                    used.to_string(),
                    max.to_string(),
                    unit.to_string(),
                    format!("{:.1}%", *used as f64 * 100.0 / (*max).max(1) as f64),
                ]
            })
            .collect();
        table::print(
            &["COST", "USED", "LIMIT", "UNIT", "SHARE"],
            &rows,
            &["USED", "LIMIT", "SHARE"],
        );
        for w in &warnings {
            println!("warning: {w}");
        }
    }
    match outcome {
        Ok(_) => Ok(0),
        Err(e) => Ok(Failure::Ledger(e).code()),
    }
}

/// An amount with more decimals than its ISO 4217 currency has is most
/// likely minor units mistaken for major ones, or the reverse.
fn decimals_warning(e: &NewEvent) -> Option<String> {
    let (_, scale) = e.amount.mantissa_scale();
    let exponent = walletlog_plugin::minor_unit_exponent(e.currency.as_str());
    let iso = e.currency.as_str().len() == 3;
    (iso && scale > exponent).then(|| {
        format!(
            "{} {} has {scale} decimals; {} has {exponent}: minor units read as major ones, \
             or the wrong exponent? (a token ticker may have more: then ignore this)",
            e.amount, e.currency, e.currency
        )
    })
}

fn scheme_text(scheme: &SignatureScheme) -> String {
    match scheme {
        SignatureScheme::None => "none: the host must allow unsigned webhooks for it".into(),
        SignatureScheme::StripeV1 => {
            "stripe-v1 (Stripe-Signature, HMAC-SHA256, timestamped)".into()
        }
        SignatureScheme::StandardWebhooksV1 => {
            "standard-webhooks-v1 (webhook-signature, HMAC-SHA256, timestamped)".into()
        }
        SignatureScheme::Hmac(HmacSpec {
            algorithm,
            header,
            encoding,
            prefix,
            include_url,
            secret_encoding,
        }) => format!(
            "hmac ({algorithm:?} in header {header}, {encoding:?} digest{}{}, \
             secret as {secret_encoding:?})",
            prefix
                .as_ref()
                .map_or(String::new(), |p| format!(" after {p:?}")),
            if *include_url { ", URL signed" } else { "" },
        ),
    }
}

pub(super) fn check(g: &Global, file: &Path) -> Result<u8> {
    let wasm = std::fs::read(file)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let limits = PluginLimits::default();
    let host = PluginHost::new(limits.clone(), None).map_err(Error::Plugin)?;
    let plugin = host.install(&wasm).map_err(Error::Plugin)?;
    let info = &plugin.info;
    let limits_json = wljson::plugin_limits(&limits);
    if g.json {
        let mut v = wljson::plugin_info(info);
        v["signature_detail"] = json!(scheme_text(&info.signature));
        v["contract"] = json!(plugin.contract);
        v["bytes"] = json!(wasm.len());
        v["limits"] = limits_json;
        print_json(&v);
        return Ok(0);
    }
    println!("plugin {} is accepted by the sandbox", file.display());
    let hash = hex(&plugin.content_hash);
    let rows = vec![
        vec!["provider".into(), info.provider.clone()],
        vec!["version".into(), info.version.clone()],
        vec![
            "contract".into(),
            format!("walletlog:normalizer@{}", plugin.contract),
        ],
        vec!["signature".into(), scheme_text(&info.signature)],
        vec![
            "size".into(),
            format!("{} bytes, sha256 {hash}", wasm.len()),
        ],
        vec!["imports".into(), "none (any import is refused)".into()],
    ];
    table::print(&["FIELD", "VALUE"], &rows, &[]);
    println!();
    println!("every call runs under these limits:");
    let limit_rows: Vec<Vec<String>> = limits_json
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| vec![k.clone(), v.to_string()])
        .collect();
    table::print(&["LIMIT", "VALUE"], &limit_rows, &["VALUE"]);
    Ok(0)
}
