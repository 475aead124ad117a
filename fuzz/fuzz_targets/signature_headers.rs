//! Fuzz target `signature_headers`: see `checks::signature_headers` for the property it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walletlog_fuzz::checks;

fuzz_target!(|data: &[u8]| checks::signature_headers(data));
