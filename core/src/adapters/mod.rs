//! Storage adapters: implementations of the [`Storage`](crate::ports::Storage) port.
//!
//! Architecture invariant: adapters hold no business rule. They store and
//! fetch what the service hands them, inside the transactions it asks for.

pub mod memory;
pub mod sqlite;
