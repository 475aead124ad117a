//! Fuzz target `checkpoint`: see `checks::checkpoint` for the property it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walletlog_fuzz::checks;

fuzz_target!(|data: &[u8]| checks::checkpoint(data));
