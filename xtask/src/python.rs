//! The Python side of the tasks: a virtualenv under target/, the module
//! built into it, and its checks.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::run;

/// Python tools in a virtualenv under target/, so a fresh machine needs
/// nothing but python3: maturin builds the module, ruff checks the code.
const PYTHON_TOOLS: &[&str] = &[
    "maturin>=1.8,<2",
    "pytest>=8,<10",
    "ruff>=0.14,<1",
    "mypy>=1.10,<2",
    // walletlog.fastapi, the example service and their HTTP tests.
    "fastapi>=0.110,<1",
    // With uvloop and httptools, as services deploy it.
    "uvicorn[standard]>=0.29,<1",
    "httpx>=0.27,<1",
    // The OpenAPI schema the router publishes, checked against its answers.
    "schemathesis>=4,<5",
    // The multi-worker deployment of docs/http.md, run in the tests.
    "gunicorn>=22,<24",
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
pub(crate) fn python_module(root: &Path, release: bool) -> Result<PathBuf> {
    let venv = venv(root)?;
    let mut cmd = Command::new(venv.join("bin/maturin"));
    cmd.args(["develop", "--quiet"])
        .current_dir(root.join("bindings/python"))
        .env("VIRTUAL_ENV", &venv)
        // maturin reports on stdout, which `cargo xtask bench` keeps for
        // its one JSON object.
        .stdout(std::process::Stdio::from(std::io::stderr()));
    if release {
        cmd.arg("--release");
    }
    run("maturin develop (bindings/python)", &mut cmd)?;
    Ok(venv)
}

/// ruff (format and lint), mypy, stubtest, then pytest; returns pytest's counts.
pub(crate) fn python_tests(root: &Path) -> Result<(u64, u64, u64)> {
    let venv = python_module(root, false)?;
    let py_dirs = [
        "bindings/python/python",
        "bindings/python/benches",
        "bindings/python/examples",
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
