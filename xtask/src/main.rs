//! `cargo xtask <task>`: the project's build, test, demo and bench entry points.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

mod c;
mod demo;
mod fuzz;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  plugins        build every plugin (providers and hostile test plugins) into target/plugins/*.wasm
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
        Some("test") => test(&root),
        Some("plugins") => plugins(&root).map(|_| ()),
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
        Some("bench") => bench(&root, &args[1..]),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}\n\n{USAGE}"),
        None => bail!("no task given\n\n{USAGE}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {what}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start: {what}"))?;
    if !status.success() {
        bail!("failed: {what} ({status})");
    }
    Ok(())
}

/// Plugins built from source: (crate, features, output name in target/plugins).
const PLUGINS: &[(&str, &str, &str)] = &[
    ("walletlog-plugin-stripe", "", "stripe"),
    ("walletlog-plugin-adyen", "", "adyen"),
    ("walletlog-plugin-square", "", "square"),
    ("walletlog-plugin-paystack", "", "paystack"),
    (
        "walletlog-plugin-standard-webhooks",
        "",
        "standard-webhooks",
    ),
    ("walletlog-hostile-plugin", "", "hostile"),
    ("walletlog-hostile-plugin", "info-loop", "hostile-info-loop"),
];

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn ensure_wasm_target() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to install the wasm32-unknown-unknown target")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == WASM_TARGET)
    {
        return Ok(());
    }
    run(
        "rustup target add wasm32-unknown-unknown",
        Command::new("rustup").args(["target", "add", WASM_TARGET]),
    )
}

/// Builds every plugin for wasm32 and turns each core module into a
/// component of the walletlog:normalizer world. Returns the output folder.
fn plugins(root: &Path) -> Result<PathBuf> {
    ensure_wasm_target()?;
    let out = root.join("target/plugins");
    std::fs::create_dir_all(&out)?;
    for (krate, features, name) in PLUGINS {
        let mut cmd = cargo();
        cmd.args([
            "build",
            "--quiet",
            "--profile",
            "plugin",
            "--target",
            WASM_TARGET,
            "-p",
            krate,
        ]);
        if !features.is_empty() {
            cmd.args(["--features", features]);
        }
        run(&format!("build plugin {name}"), &mut cmd)?;
        let module_path = root
            .join("target")
            .join(WASM_TARGET)
            .join("plugin")
            .join(format!("{}.wasm", krate.replace('-', "_")));
        let module = std::fs::read(&module_path)
            .with_context(|| format!("reading {}", module_path.display()))?;
        let component = wit_component::ComponentEncoder::default()
            .module(&module)
            .and_then(|e| e.validate(true).encode())
            .with_context(|| format!("turning {} into a component", module_path.display()))?;
        let target = out.join(format!("{name}.wasm"));
        std::fs::write(&target, component)?;
        eprintln!("xtask: plugin {name} -> {}", target.display());
    }
    Ok(out)
}

fn test(root: &Path) -> Result<()> {
    plugins(root)?;
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

/// Python tools in a virtualenv under target/, so a fresh machine needs
/// nothing but python3: maturin builds the module, ruff checks the code.
const PYTHON_TOOLS: &[&str] = &[
    "maturin>=1.8,<2",
    "pytest>=8,<10",
    "ruff>=0.14,<1",
    "mypy>=1.10,<2",
    // The example service and its HTTP tests.
    "fastapi>=0.110,<1",
    "uvicorn>=0.29,<1",
    "httpx>=0.27,<1",
];

fn venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/venv");
    if !venv.join("bin/python").exists() {
        run(
            "python3 -m venv target/venv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
    }
    let marker = venv.join(".walletlog-tools");
    let wanted = PYTHON_TOOLS.join(" ");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        run(
            "pip install maturin pytest ruff into target/venv",
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--upgrade"])
                .args(PYTHON_TOOLS),
        )?;
        std::fs::write(&marker, &wanted)?;
    }
    Ok(venv)
}

/// Builds the Python module into the virtualenv (maturin develop).
fn python_module(root: &Path, release: bool) -> Result<PathBuf> {
    let venv = venv(root)?;
    let mut cmd = Command::new(venv.join("bin/maturin"));
    cmd.args(["develop", "--quiet"])
        .current_dir(root.join("bindings/python"))
        .env("VIRTUAL_ENV", &venv);
    if release {
        cmd.arg("--release");
    }
    run("maturin develop (bindings/python)", &mut cmd)?;
    Ok(venv)
}

/// ruff (format and lint), mypy, stubtest, then pytest; returns pytest's counts.
fn python_tests(root: &Path) -> Result<(u64, u64, u64)> {
    let venv = python_module(root, false)?;
    let py_dirs = [
        "bindings/python/python",
        "bindings/python/benches",
        "tests/python",
    ];
    run(
        "ruff format --check",
        Command::new(venv.join("bin/ruff"))
            .args(["format", "--check"])
            .args(py_dirs),
    )?;
    run(
        "ruff check",
        Command::new(venv.join("bin/ruff"))
            .arg("check")
            .args(py_dirs),
    )?;
    run(
        "mypy (the walletlog package)",
        Command::new(venv.join("bin/mypy")).arg("bindings/python/python/walletlog"),
    )?;
    run(
        "mypy.stubtest walletlog._walletlog (the native stubs against the built module)",
        Command::new(venv.join("bin/python")).args(["-m", "mypy.stubtest", "walletlog._walletlog"]),
    )?;
    eprintln!("xtask: pytest tests/python");
    let output = Command::new(venv.join("bin/pytest"))
        .args(["-q", "tests/python"])
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start pytest")?;
    let text = String::from_utf8_lossy(&output.stdout);
    print!("{text}");
    let last = text
        .lines()
        .rev()
        .find(|l| l.contains(" in "))
        .unwrap_or("");
    let count = |word: &str| -> u64 {
        last.split([',', ' '])
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[1] == word)
            .filter_map(|w| w[0].parse::<u64>().ok())
            .sum()
    };
    let (passed, failed, skipped) = (
        count("passed"),
        count("failed") + count("errors") + count("error"),
        count("skipped"),
    );
    if !output.status.success() && failed == 0 {
        bail!(
            "pytest failed ({}) without reporting a failed test",
            output.status
        );
    }
    Ok((passed, failed, skipped))
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

fn bench(root: &Path, words: &[String]) -> Result<()> {
    plugins(root)?;
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    eprintln!("xtask: building and running the benchmark (release)");
    let output = cargo()
        .args([
            "bench",
            "--quiet",
            "-p",
            "walletlog",
            "--bench",
            "ledger",
            "--",
        ])
        .args(words)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start cargo bench")?;
    if !output.status.success() {
        bail!("the benchmark failed ({})", output.status);
    }
    let core = out_dir.join("core.json");
    std::fs::write(&core, &output.stdout)?;
    // The Python figures, in the same run, merged with the core ones.
    let wants_python = words.is_empty()
        || words
            .iter()
            .any(|w| "py_ingest_eps py_ingest_many_eps".contains(w.as_str()));
    let json = if wants_python {
        let venv = python_module(root, true)?;
        eprintln!("xtask: Python figures (bindings/python/benches/bench.py)");
        let merged = Command::new(venv.join("bin/python"))
            .arg(root.join("bindings/python/benches/bench.py"))
            .arg(&core)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("could not start the Python benchmark")?;
        if !merged.status.success() {
            bail!("the Python benchmark failed ({})", merged.status);
        }
        String::from_utf8(merged.stdout)?
    } else {
        String::from_utf8(output.stdout)?
    };
    print!("{json}");
    let file = out_dir.join("latest.json");
    std::fs::write(&file, &json)?;
    eprintln!("xtask: figures saved to {}", file.display());
    Ok(())
}
