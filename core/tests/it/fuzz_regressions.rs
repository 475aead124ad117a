//! Every input kept in `fuzz/regressions/<target>/` (the crashes and hangs
//! fuzzing found, once fixed, plus hand-made hostile cases) replayed through
//! the same checks the fuzz targets run. `cargo xtask fuzz` runs the fuzzers.

#[path = "../../../fuzz/src/checks.rs"]
mod checks;

use std::path::Path;

#[test]
fn kept_fuzz_inputs_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for (target, check) in checks::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target}: {} fails again", file.display());
            replayed += 1;
        }
    }
    assert!(replayed > 0, "fuzz/regressions holds inputs");
}
