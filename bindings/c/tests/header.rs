//! The committed header is exactly what cbindgen generates from the source.
//! To regenerate it: `cargo xtask header`.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut fresh);
    let path = crate_dir.join("include/walletlog.h");
    if std::env::var_os("WALLETLOG_BLESS_HEADER").is_some() {
        std::fs::write(&path, &fresh).expect("write include/walletlog.h");
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/walletlog.h differs from what cbindgen generates; run `cargo xtask header` and commit it"
    );
}
