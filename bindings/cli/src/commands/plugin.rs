//! `walletlog webhook` and `walletlog plugin check`: plugins in their sandbox.

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;
use walletlog::encoding::hex;
use walletlog::plugins::{PluginHost, PluginLimits};
use walletlog::signature::{HmacSpec, SignatureScheme};
use walletlog::{json as wljson, Error, Secret, Webhook};

use super::{open, print_json, print_results, secret_from_env, secret_from_file};
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
    /// The raw request body, byte for byte as received.
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
    let body = std::fs::read(&a.body)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", a.body.display())))?;
    let headers = a
        .headers
        .iter()
        .map(|h| match h.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), value.trim_start().to_owned()))
            }
            _ => Err(Failure::usage(format!(
                "--header {h:?} is not `Name: value`"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    let secret = match (&a.secret_env, &a.secret_file) {
        (Some(var), _) => Some(secret_from_env(var)?),
        (None, Some(file)) => Some(secret_from_file(file)?),
        (None, None) => None,
    };
    let ledger = open(g, true)?;
    if a.unsigned {
        ledger.allow_unsigned(&a.provider)?;
    }
    if let Some(secret) = secret {
        ledger.set_webhook_secret(&a.provider, Secret::new(secret))?;
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
    let (delivery, results) = ledger.receive_webhook(
        &a.provider,
        &Webhook {
            headers,
            body,
            url: a.url.clone(),
        },
    );
    if let (Some(d), false) = (&delivery, g.json) {
        // Refused or not, a stored delivery can be replayed: say which.
        eprintln!(
            "walletlog: delivery {} ({}), kept in the inbox",
            d.delivery_id,
            d.verdict()
        );
    }
    let results = results?;
    if g.json {
        print_json(&wljson::ingest_results(&results));
    } else if results.is_empty() {
        println!(
            "{}@{}: the webhook moves no money; nothing to store",
            info.provider, info.version
        );
    } else {
        print_results(&results);
    }
    Ok(0)
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
