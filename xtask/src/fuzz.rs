//! `cargo xtask fuzz --seconds N [--jobs J] [TARGET..]`: every fuzz target of
//! `fuzz/` under libFuzzer (cargo fuzz, AddressSanitizer), seeded with the
//! repository's fixtures and kept regressions, for N seconds each, J at a
//! time. Prints what ran; fails when a target found a crash, leaving the
//! input in `target/fuzz-artifacts/<target>/`. After fixing the bug, copy
//! that input into `fuzz/regressions/<target>/`: core's tests replay it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::run;

pub const TARGETS: [&str; 7] = [
    "event_json",
    "signature_headers",
    "cursor",
    "inbox_cursor",
    "checkpoint",
    "plugin_component",
    "plugin_payload",
];

/// The plugin order of `checks::PROVIDERS` (the selector byte of `plugin_payload`).
const PROVIDERS: [&str; 5] = ["stripe", "adyen", "square", "paystack", "standard-webhooks"];

pub fn fuzz(root: &Path, args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut jobs = 2usize;
    let mut targets: Vec<String> = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds needs a number")?
            }
            "--jobs" => {
                jobs = args
                    .next()
                    .context("--jobs needs a number")?
                    .parse()
                    .context("--jobs needs a number")?
            }
            t if TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => bail!("unknown fuzz option or target {other:?}; targets: {TARGETS:?}"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let cargo_fuzz = ensure_cargo_fuzz(root)?;
    crate::plugins::plugins(root)?;
    run(
        "cargo fuzz build (release, AddressSanitizer)",
        fuzz_command(root, &cargo_fuzz).args(["build", "-O", "--target-dir", "target/fuzz"]),
    )?;

    let mut results = Vec::new();
    let mut pending: Vec<String> = targets.clone();
    let mut running: Vec<(String, Child, PathBuf)> = Vec::new();
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < jobs.max(1) && !pending.is_empty() {
            let target = pending.remove(0);
            let corpus = seed_corpus(root, &target)?;
            let artifacts = root.join("target/fuzz-artifacts").join(&target);
            std::fs::create_dir_all(&artifacts)?;
            let log = root.join(format!("target/fuzz-artifacts/{target}.log"));
            eprintln!(
                "xtask: fuzz {target} for {seconds} s (log: {})",
                log.display()
            );
            let child = fuzz_command(root, &cargo_fuzz)
                .args(["run", "-O", "--target-dir", "target/fuzz", &target])
                .arg(&corpus)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .arg(format!("-artifact_prefix={}/", artifacts.display()))
                .args(["-timeout=10", "-rss_limit_mb=4096", "-print_final_stats=1"])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?)
                .spawn()
                .with_context(|| format!("could not start the fuzzer for {target}"))?;
            running.push((target, child, log));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                let (target, _, log) = running.remove(i);
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let stat = |name: &str| -> u64 {
                    text.lines()
                        .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0)
                };
                let crashed = !status.success();
                results.push((
                    target.clone(),
                    stat("number_of_executed_units"),
                    stat("average_exec_per_sec"),
                    stat("peak_rss_mb"),
                    crashed,
                ));
                if crashed {
                    eprintln!("xtask: fuzz {target} FOUND A CRASH; see {}", log.display());
                }
            } else {
                i += 1;
            }
        }
    }

    println!("| target | seconds | executions | exec/s | peak RSS MB | result |");
    println!("|---|---|---|---|---|---|");
    for (target, runs, per_sec, rss, crashed) in &results {
        println!(
            "| `{target}` | {seconds} | {runs} | {per_sec} | {rss} | {} |",
            if *crashed { "CRASH" } else { "no crash" }
        );
    }
    if results.iter().any(|r| r.4) {
        bail!("a fuzz target crashed: the inputs are in target/fuzz-artifacts/");
    }
    Ok(())
}

/// cargo fuzz under target/tools, installed from crates.io when missing.
fn ensure_cargo_fuzz(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target/tools");
    let bin = tools.join("bin/cargo-fuzz");
    if !bin.exists() {
        run(
            "cargo install cargo-fuzz",
            crate::cargo()
                .args(["install", "cargo-fuzz", "--locked", "--root"])
                .arg(&tools),
        )?;
    }
    Ok(bin)
}

/// `cargo fuzz` on the stable toolchain: libFuzzer's instrumentation and
/// AddressSanitizer are nightly flags, which RUSTC_BOOTSTRAP allows.
fn fuzz_command(root: &Path, cargo_fuzz: &Path) -> Command {
    let mut cmd = Command::new(cargo_fuzz);
    cmd.arg("fuzz")
        .current_dir(root)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("WALLETLOG_PLUGINS_DIR", root.join("target/plugins"));
    cmd
}

/// A corpus folder seeded with the repository's own inputs for `target`.
fn seed_corpus(root: &Path, target: &str) -> Result<PathBuf> {
    let corpus = root.join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    let seed = |name: &str, bytes: &[u8]| std::fs::write(corpus.join(name), bytes);
    if let Ok(entries) = std::fs::read_dir(root.join("fuzz/regressions").join(target)) {
        for e in entries.flatten() {
            seed(
                &format!("regression-{}", e.file_name().to_string_lossy()),
                &std::fs::read(e.path())?,
            )?;
        }
    }
    let fixtures = root.join("tests/fixtures/webhooks");
    match target {
        "event_json" => {
            seed(
                "event",
                br#"{"event_id":"0191f0c2-7a3e-7000-8000-000000000001","wallet_id":"w1","provider":"stripe","event_type":"hold","amount":"12.30","currency":"USD","occurred_at":"2026-01-02T04:04:05+01:00","provider_event_id":"evt_1","idempotency_key":"k","metadata":{"a":[1,{"b":null}]}}"#,
            )?;
            seed(
                "batch",
                br#"[{"wallet_id":"w","provider":"p","event_type":"fee","amount":"1","currency":"EUR","occurred_at":"2026-01-01T00:00:00Z"}]"#,
            )?;
        }
        "signature_headers" => {
            seed("stripe", b"\x00t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39\xff\xff\xff{}")?;
            seed("standard", b"\x01msg_p5jXN8AQM9LWM0D4loKWxJek\xff1614265330\xffv1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\xff{\"test\": 2432232314}")?;
            seed("hmac", b"\x02sha256=00ff\xff\xff\xffbody")?;
        }
        "cursor" | "inbox_cursor" => seed("empty", b"")?,
        "checkpoint" => seed(
            "checkpoint",
            &std::fs::read(root.join("fuzz/regressions/checkpoint/hand-made-valid"))?,
        )?,
        "plugin_component" => {
            for p in PROVIDERS.iter().chain(&["hostile"]) {
                if let Ok(bytes) = std::fs::read(root.join(format!("target/plugins/{p}.wasm"))) {
                    seed(p, &bytes)?;
                }
            }
        }
        "plugin_payload" => {
            for (i, provider) in PROVIDERS.iter().enumerate() {
                let Ok(entries) = std::fs::read_dir(fixtures.join(provider)) else {
                    continue;
                };
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.ends_with(".md") {
                        continue;
                    }
                    let mut bytes = vec![i as u8];
                    bytes.extend(std::fs::read(e.path())?);
                    seed(&format!("{provider}-{name}"), &bytes)?;
                }
            }
        }
        _ => {}
    }
    Ok(corpus)
}
