//! `cargo xtask bench`: the benchmark program, with the Python figures
//! of the same run merged into its one JSON object.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::cargo;
use crate::plugins::plugins;
use crate::python::python_module;

/// The seed's stack (a stand-in: Python, the SQLAlchemy ORM, one commit per
/// event) on the same PostgreSQL, merged into `figures`.
fn seed_stack(root: &Path, out_dir: &Path, figures: &str) -> Result<String> {
    let venv = seed_venv(root)?;
    let path = out_dir.join("before-seed.json");
    std::fs::write(&path, figures)?;
    eprintln!("xtask: the seed stack on PostgreSQL (bindings/python/benches/seed_stack.py)");
    let admin = std::env::var(walletlog_testpg::ENV)?;
    let merged = Command::new(venv.join("bin/python"))
        .arg(root.join("bindings/python/benches/seed_stack.py"))
        .arg(&path)
        .arg(admin)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start the seed stack benchmark")?;
    if !merged.status.success() {
        bail!("the seed stack benchmark failed ({})", merged.status);
    }
    Ok(String::from_utf8(merged.stdout)?)
}

/// The virtualenv with the module built for speed, and what the seed's
/// stand-in stacks need.
fn seed_venv(root: &Path) -> Result<std::path::PathBuf> {
    let venv = python_module(root, true)?;
    crate::run(
        "pip install sqlalchemy psycopg (the seed stack's stand-in)",
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "sqlalchemy>=2,<3",
            "psycopg[binary]>=3.2,<4",
        ]),
    )?;
    Ok(venv)
}

/// The HTTP figures (uvicorn serving walletlog's router, and the seed's
/// stack, loaded by wrk), merged into `figures`.
fn http(root: &Path, out_dir: &Path, figures: &str) -> Result<String> {
    if Command::new("wrk").arg("--version").output().is_err() {
        crate::apt_install(&["wrk"], "wrk (the HTTP load generator)")?;
    }
    let venv = seed_venv(root)?;
    let path = out_dir.join("before-http.json");
    std::fs::write(&path, figures)?;
    eprintln!("xtask: HTTP figures (bindings/python/benches/http_bench.py)");
    let merged = Command::new(venv.join("bin/python"))
        .arg(root.join("bindings/python/benches/http_bench.py"))
        .arg(&path)
        .env("WALLETLOG_BENCH_PG", std::env::var(walletlog_testpg::ENV)?)
        .env("WALLETLOG_BENCH_DIR", out_dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("could not start the HTTP benchmark")?;
    if !merged.status.success() {
        bail!("the HTTP benchmark failed ({})", merged.status);
    }
    Ok(String::from_utf8(merged.stdout)?)
}

pub(crate) fn bench(root: &Path, words: &[String]) -> Result<()> {
    plugins(root)?;
    let out_dir = root.join("target/bench");
    std::fs::create_dir_all(&out_dir)?;
    // The PostgreSQL figures run on the same server as the tests would.
    let _server = crate::pg::run_server()?;
    eprintln!("xtask: building and running the benchmark (release)");
    let output = cargo()
        .args([
            "bench",
            "--quiet",
            "-p",
            "walletlog",
            "--bench",
            "ledger",
            "--features",
            "postgres",
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
    let json = if words.is_empty() || words.iter().any(|w| w.contains("seed")) {
        seed_stack(root, &out_dir, &json)?
    } else {
        json
    };
    let json = if words.is_empty() || words.iter().any(|w| w.starts_with("http")) {
        http(root, &out_dir, &json)?
    } else {
        json
    };
    print!("{json}");
    let file = out_dir.join("latest.json");
    std::fs::write(&file, &json)?;
    eprintln!("xtask: figures saved to {}", file.display());
    Ok(())
}
