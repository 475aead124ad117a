//! Fuzz target `inbox_cursor`: see `checks::inbox_cursor` for the property it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walletlog_fuzz::checks;

fuzz_target!(|data: &[u8]| checks::inbox_cursor(data));
