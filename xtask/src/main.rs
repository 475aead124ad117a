//! `cargo xtask <task>`: the project's build, test, demo and bench entry points.
//!
//! | file | job |
//! |---|---|
//! | `main.rs` | the task list, and running commands |
//! | `plugins.rs` | building the plugins into components |
//! | `test.rs` | `cargo xtask test`: fmt, clippy, the reduced feature sets, every test |
//! | `python.rs` | the virtualenv, the module, ruff, mypy, stubtest, pytest |
//! | `c.rs` | installing libwalletlog, the C tests under valgrind |
//! | `demo.rs` | the demo, and its check in `test` |
//! | `bench.rs` | the benchmark program and its Python figures |
//! | `fuzz.rs` | cargo fuzz |

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod bench;
mod c;
mod demo;
mod fuzz;
mod pg;
mod plugins;
mod python;
mod test;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  plugins [NAME..]
                 build every plugin (providers and test plugins), or the ones named (stripe,
                 paystack, acme-v2, ...), into target/plugins/NAME.wasm
  test           cargo fmt --check, clippy -D warnings, plugins, every test: Rust, C (under valgrind), Python
  c [--release] [--prefix DIR]
                 build libwalletlog and install header, libraries and pkg-config files
                 under DIR (default target/c)
  header         regenerate bindings/c/include/walletlog.h with cbindgen
  reliability [--kills N] [--race-rounds N]
                 the long kill test (200 SIGKILLs) and race test (20 rounds of 4 processes x 4
                 threads with conflicts); prints what they checked
  fuzz [--seconds N] [--jobs J] [TARGET..]
                 every fuzz target of fuzz/ (cargo fuzz, installed under target/tools) for N
                 seconds each, J at a time; fails on a crash
  demo           the main job: real Paystack, Square and Adyen webhooks, signed, through their
                 plugins and the walletlog command into target/demo/walletlog.db; replays, a
                 forged delivery, every wallet's history and balance, the audit verification
  bench [WORD..] the benchmark program; prints one JSON object (WORDs filter the figures)
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("test") => test::test(&root),
        Some("plugins") => plugins::plugins_named(&root, &args[1..]).map(|_| ()),
        Some("demo") => demo::demo(&root),
        Some("c") => c_install(&root, &args[1..]),
        Some("reliability") => reliability(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&root, &args[1..]),
        Some("header") => run(
            "cbindgen: regenerate bindings/c/include/walletlog.h",
            cargo()
                .args(["test", "--quiet", "-p", "walletlog-c", "--test", "header"])
                .env("WALLETLOG_BLESS_HEADER", "1"),
        ),
        Some("bench") => bench::bench(&root, &args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n\n{USAGE}"),
        None => bail!("no task given\n\n{USAGE}"),
    }
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Installs Debian packages with apt-get (through `sudo -n` when not root),
/// updating the package lists first if a fresh machine has none.
pub(crate) fn apt_install(packages: &[&str], what: &str) -> Result<()> {
    let apt = |args: &[&str]| -> Result<bool> {
        let mut cmd = if is_root() {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        eprintln!("xtask: apt-get {}", args.join(" "));
        Ok(cmd
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args)
            .status()
            .with_context(|| format!("apt-get is needed to install {what}"))?
            .success())
    };
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(packages);
    let installed = apt(&install)? || (apt(&["update"])? && apt(&install)?);
    if !installed {
        bail!("could not install {} ({what})", packages.join(", "));
    }
    Ok(())
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start: {what}"))?;
    if !status.success() {
        bail!("failed: {what} ({status})");
    }
    Ok(())
}

/// The long forms of the kill and race tests (the short forms run in `test`).
fn reliability(args: &[String]) -> Result<()> {
    let (mut kills, mut rounds) = ("200".to_owned(), "20".to_owned());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kills" => kills = args.next().context("--kills needs a number")?.clone(),
            "--race-rounds" => {
                rounds = args.next().context("--race-rounds needs a number")?.clone()
            }
            other => bail!("unknown option {other:?} for `cargo xtask reliability`\n\n{USAGE}"),
        }
    }
    for (what, test, var, value) in [
        (
            "kill test",
            "it::kill::a_killed_writer_loses_no_acknowledged_event",
            "WALLETLOG_KILLS",
            &kills,
        ),
        (
            "race test",
            "it::races::four_processes_of_four_threads_collide_and_conflict",
            "WALLETLOG_RACE_ROUNDS",
            &rounds,
        ),
    ] {
        run(
            &format!("{what} ({var}={value})"),
            cargo()
                .args(["test", "-p", "walletlog", "--test", "tests", "--", test])
                .args(["--exact", "--nocapture"])
                .env(var, value),
        )?;
    }
    Ok(())
}

fn c_install(root: &Path, args: &[String]) -> Result<()> {
    let mut release = false;
    let mut prefix = root.join("target/c");
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--release" => release = true,
            "--prefix" => prefix = args.next().context("--prefix needs a folder")?.into(),
            other => bail!("unknown option {other:?} for `cargo xtask c`\n\n{USAGE}"),
        }
    }
    c::install(root, release, &prefix, c::Build::Package)
}
