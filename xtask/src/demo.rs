//! `cargo xtask demo`: the main job, as an operator would run it.
//!
//! Builds the plugins and the `walletlog` command, then feeds the real
//! webhook payloads of three providers (Paystack, Square, Adyen), as they were
//! published, through their plugins into `target/demo/walletlog.db`, each
//! signed with a secret generated for this run. Some are delivered again, as
//! providers retry, and one forged delivery is refused. Then every wallet's
//! history and balance, and the audit verification.
//!
//! Running it twice gives the same ledger: on the second run every webhook
//! is a duplicate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::{cargo, run};

const SQUARE_URL: &str = "https://wallets.example.com/webhooks/square";

/// How one provider signs, with this run's secret.
#[derive(Clone, Copy)]
enum Signer<'a> {
    /// HMAC-SHA512 of the body, hex, under the secret API key.
    Paystack(&'a str),
    /// HMAC-SHA256 of URL + body, base64, under the signature key.
    Square(&'a str),
    /// HMAC-SHA256 of the body, base64, under the hex-decoded HMAC key.
    Adyen(&'a str),
}

impl Signer<'_> {
    fn provider(self) -> &'static str {
        match self {
            Signer::Paystack(_) => "paystack",
            Signer::Square(_) => "square",
            Signer::Adyen(_) => "adyen",
        }
    }

    fn secret_env(self) -> &'static str {
        match self {
            Signer::Paystack(_) => "PAYSTACK_SECRET_KEY",
            Signer::Square(_) => "SQUARE_SIGNATURE_KEY",
            Signer::Adyen(_) => "ADYEN_HMAC_KEY",
        }
    }

    /// The signature header for `body`.
    fn header(self, body: &[u8]) -> String {
        match self {
            Signer::Paystack(key) => {
                let mut m = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes())
                    .expect("HMAC takes keys of any length");
                m.update(body);
                format!("x-paystack-signature: {}", hex(&m.finalize().into_bytes()))
            }
            Signer::Square(key) => {
                let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                    .expect("HMAC takes keys of any length");
                m.update(SQUARE_URL.as_bytes());
                m.update(body);
                format!(
                    "x-square-hmacsha256-signature: {}",
                    B64.encode(m.finalize().into_bytes())
                )
            }
            Signer::Adyen(key) => {
                let raw: Vec<u8> = (0..key.len())
                    .step_by(2)
                    .filter_map(|i| u8::from_str_radix(&key[i..i + 2], 16).ok())
                    .collect();
                let mut m = Hmac::<sha2::Sha256>::new_from_slice(&raw)
                    .expect("HMAC takes keys of any length");
                m.update(body);
                format!("HmacSignature: {}", B64.encode(m.finalize().into_bytes()))
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 random bytes as hex, from the operating system.
fn random_hex() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    hex(&[a.as_bytes().as_slice(), b.as_bytes().as_slice()].concat())
}

/// The deliveries, in order: (provider's signer, fixture file under
/// tests/fixtures/webhooks/<provider>/).
fn deliveries<'a>(
    paystack: Signer<'a>,
    square: Signer<'a>,
    adyen: Signer<'a>,
) -> Vec<(Signer<'a>, &'static str)> {
    vec![
        (paystack, "charge.success.json"),
        (paystack, "direct-debit.charge.success.json"),
        (paystack, "transfer.success.json"),
        (paystack, "transfer.reversed.json"),
        (paystack, "preauthorization.capture.success.json"),
        (paystack, "refund.pending.json"),
        // Paystack sends no time with it: dated by its first receipt.
        (paystack, "refund.processed.json"),
        (square, "payment.updated.json"),
        (square, "refund.updated.json"),
        (square, "payout.sent.json"),
        (square, "payout.paid.json"),
        (
            adyen,
            "transfer.created-initiated-on-demand-top-up.openapi_example.json",
        ),
        (
            adyen,
            "transfer.updated-authorized-on-demand-top-up.openapi_example.json",
        ),
        (
            adyen,
            "transfer.updated-captured-on-demand-top-up.openapi_example.json",
        ),
        (
            adyen,
            "transfer.created-outgoing-external.openapi_example.json",
        ),
        (
            adyen,
            "transfer.updated-01.payout-authorized.openapi_example.json",
        ),
        (
            adyen,
            "transfer.updated-02.payout-booked.openapi_example.json",
        ),
    ]
}

struct Demo {
    walletlog: PathBuf,
    db: PathBuf,
    /// Print nothing (when the tests run the demo).
    quiet: bool,
    paystack: String,
    square: String,
    adyen: String,
}

impl Demo {
    /// Runs `walletlog --db DB ARGS`, printing the command as a user would type it.
    fn walletlog(&self, args: &[String], shown: &str) -> Result<i32> {
        self.say(&format!("\n$ walletlog {shown}"));
        let mut cmd = Command::new(&self.walletlog);
        cmd.arg("--db")
            .arg(&self.db)
            .args(args)
            .env("PAYSTACK_SECRET_KEY", &self.paystack)
            .env("SQUARE_SIGNATURE_KEY", &self.square)
            .env("ADYEN_HMAC_KEY", &self.adyen);
        if self.quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let status = cmd.status().context("could not start walletlog")?;
        status.code().context("walletlog was killed")
    }

    fn say(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }

    fn deliver(&self, signer: Signer<'_>, file: &str, forged: bool) -> Result<i32> {
        let provider = signer.provider();
        let body_path = format!("tests/fixtures/webhooks/{provider}/{file}");
        let body = std::fs::read(&body_path).with_context(|| format!("reading {body_path}"))?;
        let header = if forged {
            match signer {
                Signer::Paystack(_) => Signer::Paystack("sk_live_forger").header(&body),
                other => other.header(b"forged"),
            }
        } else {
            signer.header(&body)
        };
        let plugin = format!("target/plugins/{provider}.wasm");
        let mut args: Vec<String> = vec![
            "webhook".into(),
            "--provider".into(),
            provider.into(),
            "--plugin".into(),
            plugin.clone(),
            body_path.clone(),
            "--header".into(),
            header.clone(),
            "--secret-env".into(),
            signer.secret_env().into(),
        ];
        if let Signer::Square(_) = signer {
            args.extend(["--url".into(), SQUARE_URL.into()]);
        }
        let (name, value) = header.split_once(": ").unwrap_or((&header, ""));
        let short = format!("{name}: {}…", &value[..value.len().min(12)]);
        let shown = format!(
            "webhook --provider {provider} --plugin {plugin} {body_path} \\\n    --header '{short}' --secret-env {}{}",
            signer.secret_env(),
            if matches!(signer, Signer::Square(_)) {
                format!(" --url {SQUARE_URL}")
            } else {
                String::new()
            }
        );
        self.walletlog(&args, &shown)
    }
}

/// `cargo xtask demo`.
pub fn demo(root: &Path) -> Result<()> {
    crate::plugins::plugins(root)?;
    build_cli()?;
    let dir = root.join("target/demo");
    std::fs::create_dir_all(&dir)?;
    run_demo(root, &dir.join("walletlog.db"), false)
}

fn build_cli() -> Result<()> {
    run(
        "build the walletlog command",
        cargo().args(["build", "--quiet", "-p", "walletlog-cli"]),
    )
}

/// For `cargo xtask test` (plugins already built): the demo runs on a fresh
/// file, then again, and both runs must leave the same ledger. Returns
/// (passed, failed).
pub fn check(root: &Path) -> Result<(u64, u64)> {
    // target/debug/walletlog was built by `cargo test --workspace` (the CLI's
    // tests run it), with the features the workspace resolved.
    let dir = root.join("target/demo-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("walletlog.db");
    let export = || -> Result<String> {
        let out = Command::new(root.join("target/debug/walletlog"))
            .arg("--db")
            .arg(&db)
            .arg("export")
            .output()?;
        Ok(String::from_utf8(out.stdout)?)
    };
    eprintln!("xtask: the demo, twice on a fresh ledger");
    run_demo(root, &db, true)?;
    let first = export()?;
    run_demo(root, &db, true)?;
    let second = export()?;
    let events = first.lines().count();
    let same = first == second && events == DEMO_EVENTS;
    if same {
        eprintln!("xtask: demo ok: {events} events, the same ledger after a second run");
        Ok((1, 0))
    } else {
        eprintln!(
            "xtask: demo FAILED: {events} events after the first run (expected {DEMO_EVENTS}), \
             {} after the second, same: {}",
            second.lines().count(),
            first == second
        );
        Ok((0, 1))
    }
}

/// The events the demo's deliveries store.
const DEMO_EVENTS: usize = 18;

fn run_demo(root: &Path, db: &Path, quiet: bool) -> Result<()> {
    let demo = Demo {
        walletlog: root.join("target/debug/walletlog"),
        db: db.to_path_buf(),
        quiet,
        paystack: format!("sk_test_{}", &random_hex()[..40]),
        square: random_hex(),
        adyen: random_hex().to_uppercase(),
    };
    let paystack = Signer::Paystack(&demo.paystack);
    let square = Signer::Square(&demo.square);
    let adyen = Signer::Adyen(&demo.adyen);

    demo.say(&format!(
        "walletlog demo: real provider webhooks into {}",
        demo.db.display()
    ));
    demo.say(
        "Secrets for Paystack, Square and Adyen were generated for this run; walletlog\n\
         reads them from the environment (--secret-env), never from the command line.\n\
         The bodies are the providers' published payloads, byte for byte.",
    );

    demo.say("\n== 1. Providers deliver their webhooks ==");
    for (signer, file) in deliveries(paystack, square, adyen) {
        let code = demo.deliver(signer, file, false)?;
        if code != 0 {
            bail!("walletlog webhook {file} exited with {code}");
        }
    }

    demo.say("\n== 2. Providers retry: the same deliveries again are duplicates ==");
    for (signer, file) in [
        (paystack, "charge.success.json"),
        (square, "payment.updated.json"),
        (
            adyen,
            "transfer.updated-02.payout-booked.openapi_example.json",
        ),
    ] {
        let code = demo.deliver(signer, file, false)?;
        if code != 0 {
            bail!("the replay of {file} exited with {code}");
        }
    }

    demo.say("\n== 3. A forged delivery (signed with the wrong key) is refused, exit code 3 ==");
    let code = demo.deliver(paystack, "transfer.success.json", true)?;
    if code != 3 {
        bail!("the forged webhook exited with {code}, not 3");
    }

    demo.say(
        "\n== 4. The webhook inbox: every verified delivery, kept with its verdict and attempts ==",
    );
    let args = ["inbox", "list", "--limit", "8"].map(str::to_owned);
    if demo.walletlog(&args, "inbox list --limit 8")? != 0 {
        bail!("walletlog inbox list failed");
    }

    demo.say("\n== 5. Every wallet's history and balance ==");
    let export = Command::new(&demo.walletlog)
        .arg("--db")
        .arg(&demo.db)
        .arg("export")
        .output()
        .context("could not start walletlog export")?;
    if !export.status.success() {
        bail!("walletlog export failed");
    }
    let mut wallets: Vec<String> = String::from_utf8(export.stdout)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["wallet_id"].as_str().map(str::to_owned))
        .collect();
    wallets.sort();
    wallets.dedup();
    for wallet in &wallets {
        for command in ["history", "balance"] {
            let args = vec![command.to_owned(), wallet.clone()];
            if demo.walletlog(&args, &format!("{command} {wallet}"))? != 0 {
                bail!("walletlog {command} {wallet} failed");
            }
        }
    }

    demo.say("\n== 6. The audit trail: every delivery, replay and refusal, hash-chained ==");
    if demo.walletlog(&["audit".into(), "verify".into()], "audit verify")? != 0 {
        bail!("the audit trail does not verify");
    }

    demo.say("\n== 7. A signed checkpoint, kept outside the ledger, pins the trail's head ==");
    let dir = demo.db.parent().context("the ledger has a folder")?;
    let (key, public, checkpoint) = (
        dir.join("checkpoint.key"),
        dir.join("checkpoint.pub"),
        dir.join("checkpoint.txt"),
    );
    if !key.exists() {
        let _ = std::fs::remove_file(&public);
        let args = [
            "audit".to_owned(),
            "keygen".into(),
            "--signing-key-file".into(),
            key.display().to_string(),
            "--public-key-file".into(),
            public.display().to_string(),
        ];
        if demo.walletlog(
            &args,
            "audit keygen --signing-key-file checkpoint.key --public-key-file checkpoint.pub",
        )? != 0
        {
            bail!("walletlog audit keygen failed");
        }
    }
    demo.say("\n$ walletlog audit checkpoint --key-file checkpoint.key > checkpoint.txt");
    let out = Command::new(&demo.walletlog)
        .arg("--db")
        .arg(&demo.db)
        .args(["audit", "checkpoint", "--key-file"])
        .arg(&key)
        .output()
        .context("could not start walletlog audit checkpoint")?;
    if !out.status.success() {
        bail!("walletlog audit checkpoint failed");
    }
    std::fs::write(&checkpoint, &out.stdout)?;
    demo.say(String::from_utf8_lossy(&out.stdout).trim_end());
    let args = [
        "audit".to_owned(),
        "verify".into(),
        "--checkpoint".into(),
        checkpoint.display().to_string(),
        "--public-key".into(),
        public.display().to_string(),
    ];
    if demo.walletlog(
        &args,
        "audit verify --checkpoint checkpoint.txt --public-key checkpoint.pub",
    )? != 0
    {
        bail!("the ledger does not extend its checkpoint");
    }
    demo.say(&format!(
        "\nThe ledger is {}. Run `cargo xtask demo` again: every delivery is then a\n\
         duplicate and the ledger stays the same. Try `target/debug/walletlog --db {} --help`.",
        demo.db.display(),
        demo.db.display()
    ));
    Ok(())
}
