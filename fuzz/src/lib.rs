//! The fuzz targets' bodies. `checks.rs` is also compiled into core's test
//! binary, which replays every input kept in `fuzz/regressions/`.
pub mod checks;
