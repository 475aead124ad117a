//! Building the plugins: each crate for wasm32, each module turned into a
//! component of the walletlog:normalizer world, into target/plugins.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::{cargo, run};

/// Plugins built from source: (crate, features, output name in target/plugins).
/// Every plugin `cargo xtask plugins` builds: (crate, cargo features, the
/// component's name in `target/plugins/<name>.wasm`). A new plugin is one
/// more line here (and its crate in the workspace's members).
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
    ("walletlog-replay-plugin", "contract-1-0", "acme-v1"),
    ("walletlog-replay-plugin", "v2", "acme-v2"),
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
pub(crate) fn plugins(root: &Path) -> Result<PathBuf> {
    plugins_named(root, &[])
}

/// Builds the plugins named (the last column of [`PLUGINS`]: `stripe`,
/// `acme-v2`, ...), or all of them when `names` is empty.
pub(crate) fn plugins_named(root: &Path, names: &[String]) -> Result<PathBuf> {
    for name in names {
        if !PLUGINS.iter().any(|(_, _, n)| n == name) {
            let known: Vec<&str> = PLUGINS.iter().map(|(_, _, n)| *n).collect();
            anyhow::bail!("no plugin {name:?}; the plugins are {}", known.join(", "));
        }
    }
    ensure_wasm_target()?;
    let out = root.join("target/plugins");
    std::fs::create_dir_all(&out)?;
    let chosen = PLUGINS
        .iter()
        .filter(|(_, _, n)| names.is_empty() || names.iter().any(|x| x == n));
    for (krate, features, name) in chosen {
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
