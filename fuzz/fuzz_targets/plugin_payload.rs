//! Fuzz target `plugin_payload`: see `checks::plugin_payload` for the property it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walletlog_fuzz::checks;

fuzz_target!(
    init: {
        checks::provider_plugins();
    },
    |data: &[u8]| checks::plugin_payload(data)
);
