mod conformance;
mod kill;
mod properties;
mod races;
mod sqlite;
mod tamper;
mod util;
mod validation;
