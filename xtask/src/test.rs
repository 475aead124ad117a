//! `cargo xtask test`: what CI runs.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::c;
use crate::demo;
use crate::plugins::plugins;
use crate::python::python_tests;
use crate::{cargo, run};

pub(crate) fn test(root: &Path) -> Result<()> {
    plugins(root)?;
    reduced_features()?;
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    // The fuzz crate is its own workspace (the main build never needs it);
    // its shared checks are compiled and linted as part of core's tests.
    run(
        "cargo fmt --check (fuzz/)",
        cargo().args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]),
    )?;
    run(
        "cargo clippy -D warnings",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // One PostgreSQL server for every suite of the run, stopped at the end.
    let _server = crate::pg::run_server()?;
    let (mut passed, mut failed, mut ignored) = cargo_test()?;
    let (p, f) = c::test(root)?;
    passed += p;
    failed += f;
    let (p, f) = demo::check(root)?;
    passed += p;
    failed += f;
    let (p, f, s) = python_tests(root)?;
    passed += p;
    failed += f;
    ignored += s;
    // The closing line CI reads: every test binary of the workspace, summed.
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if failed > 0 {
        bail!("{failed} tests failed");
    }
    Ok(())
}

/// Runs `cargo test --workspace`, echoing its output, and sums the
/// `test result:` lines of every test binary and doctest run.
fn cargo_test() -> Result<(u64, u64, u64)> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: cargo test (unit, integration, races, properties, plugins, doctests)");
    let mut child = cargo()
        .args(["test", "--workspace", "--no-fail-fast"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("could not start cargo test")?;
    let stdout = child.stdout.take().context("no stdout from cargo test")?;
    let (mut passed, mut failed, mut ignored) = (0, 0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            let count = |word: &str| -> u64 {
                rest.split(';')
                    .filter_map(|part| part.trim().strip_suffix(word))
                    .filter_map(|n| {
                        n.trim()
                            .rsplit(' ')
                            .next()
                            .and_then(|n| n.parse::<u64>().ok())
                    })
                    .sum()
            };
            passed += count("passed");
            failed += count("failed");
            ignored += count("ignored");
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("cargo test failed ({status})");
    }
    Ok((passed, failed, ignored))
}

/// The core crate in its reduced forms builds on its own: SQLite without
/// the plugin sandbox (and then without wasmtime in its tree), PostgreSQL
/// alone, and no engine but memory.
fn reduced_features() -> Result<()> {
    let sqlite_only = [
        "-p",
        "walletlog",
        "--no-default-features",
        "--features",
        "sqlite",
    ];
    for features in [Some("sqlite"), Some("postgres"), None] {
        let mut what = "cargo check -p walletlog --no-default-features".to_owned();
        let mut cmd = cargo();
        cmd.args([
            "check",
            "--quiet",
            "--lib",
            "-p",
            "walletlog",
            "--no-default-features",
        ]);
        if let Some(f) = features {
            what.push_str(&format!(" --features {f}"));
            cmd.args(["--features", f]);
        }
        run(&what, &mut cmd)?;
    }
    // The workspace's tests build core with `postgres` (its faces enable
    // it); its own tests must build without it too (`cargo xtask
    // reliability` runs them so).
    run(
        "cargo check -p walletlog --tests (default features)",
        cargo().args(["check", "--quiet", "--tests", "-p", "walletlog"]),
    )?;
    let tree = cargo()
        .args(["tree", "--edges", "normal"])
        .args(sqlite_only)
        .output()
        .context("could not start cargo tree")?;
    let tree = String::from_utf8_lossy(&tree.stdout);
    if !tree.contains("rusqlite") || tree.contains("wasmtime") {
        bail!("walletlog with only the sqlite feature must have rusqlite and no wasmtime:\n{tree}");
    }
    eprintln!("xtask: walletlog --no-default-features --features sqlite has no wasmtime");
    Ok(())
}
