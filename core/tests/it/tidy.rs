//! Architecture invariants, checked on the source (as rust-analyzer's tidy
//! tests do): the centre of the hexagon names no engine, transport or
//! binding, so that a new engine or face never needs a change there.

use std::path::{Path, PathBuf};

/// What `domain`, `ports` and `service` must never name.
const FORBIDDEN: &[&str] = &[
    "rusqlite",
    "postgres",
    "wasmtime",
    "pyo3",
    "clap",
    "indicatif",
    "prometheus_client",
    "crate::adapters",
    "crate::plugins",
    "crate::json",
    "crate::webhook",
    "crate::ledger",
];

/// `serde_json` is a transport crate too; the one exception is metadata,
/// which *is* a JSON object and is validated as one in `domain/values.rs`.
const SERDE_JSON_ALLOWED: &[&str] = &["domain/values.rs"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_centre_names_no_engine_transport_or_binding() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for layer in ["domain", "ports", "service"] {
        rust_files(&src.join(layer), &mut files);
    }
    assert!(files.len() >= 12, "the layers were not found: {files:?}");
    let mut breaches = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in FORBIDDEN {
                if code.contains(name) {
                    breaches.push(format!("{relative}:{}: names {name}", n + 1));
                }
            }
            if code.contains("serde_json") && !SERDE_JSON_ALLOWED.contains(&relative.as_str()) {
                breaches.push(format!("{relative}:{}: names serde_json", n + 1));
            }
        }
    }
    assert!(
        breaches.is_empty(),
        "architecture invariant broken:\n{}",
        breaches.join("\n")
    );
}

#[test]
fn the_tidy_check_catches_a_breach() {
    // The check itself can fail: a line naming an engine is caught.
    let line = "use rusqlite::Connection;";
    assert!(FORBIDDEN.iter().any(|name| line.contains(name)));
}
