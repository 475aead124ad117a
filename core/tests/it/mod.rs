mod conformance;
mod properties;
mod races;
mod sqlite;
mod tamper;
mod util;
mod validation;
