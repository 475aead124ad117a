//! The ports: what the service needs from a storage engine.
//!
//! Architecture invariant: the service sees storage only through these
//! traits. An adapter implements [`Storage`] (and [`Backup`] if it can);
//! nothing else changes. The port-contract suite (`core/tests/it/port.rs`)
//! drives these traits directly on every adapter.
//!
//! Reads and writes happen inside transactions the adapter opens and ends.
//! A write transaction is exclusive across threads *and processes* for its
//! whole life, so the check-and-insert the service does inside it is atomic.

mod backup;
mod storage;

pub use backup::Backup;
pub use storage::{AmountRow, InboxPrune, InboxTally, Pruned, ReadTx, Storage, WriteTx};
