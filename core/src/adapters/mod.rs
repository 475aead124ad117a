//! Storage adapters: implementations of the [`Storage`](crate::ports::Storage) port.
//!
//! Architecture invariant: adapters hold no business rule and do no money
//! arithmetic. They store and fetch what the service hands them, inside
//! the transactions it asks for, and re-validate every row they read.

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod stored;
