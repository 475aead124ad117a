//! The SQLite adapter: one file, WAL, `BEGIN IMMEDIATE` writes.
//!
//! One writer connection (behind a mutex) serves this process's writes;
//! `BEGIN IMMEDIATE` takes SQLite's write lock at the start of every write
//! transaction, so check-and-insert is atomic across processes too, and a
//! contended writer waits up to the busy timeout instead of failing. Reads
//! run on a small pool of connections, each in a deferred transaction: one
//! consistent snapshot, concurrent with the writer thanks to WAL.
//!
//! | file | job |
//! |---|---|
//! | `open.rs` | open, WAL switch (retried while others create the file), ownership check, migrations |
//! | `schema.rs` | the embedded migrations |
//! | `tx.rs` | the port's reads and writes as SQL |
//! | `rows.rs` | rows back to domain values, re-validated |
//! | `backup.rs` | the online backup |
//! | `error.rs` | SQLite errors as storage errors |

#[macro_use]
mod rows;
mod backup;
mod error;
mod open;
mod schema;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::config::{Durability, SqliteConfig};
use crate::domain::Result;
use crate::ports::{Backup, ReadTx, Storage, WriteTx};

pub use schema::{latest_version as schema_version, APPLICATION_ID};

use error::{map_err, open_error};
use tx::{finish, Tx};

/// Settings read back from an open SQLite ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// `wal`.
    pub journal_mode: String,
    pub durability: Durability,
    pub busy_timeout: Duration,
    pub schema_version: i64,
}

/// The SQLite storage engine.
pub struct SqliteStorage {
    path: PathBuf,
    config: SqliteConfig,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    known: tx::Known,
}

impl SqliteStorage {
    /// Opens (creating if needed) a walletlog database file and brings its
    /// schema up to date. A file from a newer walletlog, or one that is not
    /// a walletlog database, is refused.
    pub fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = open::open_writer(&path, &config)?;
        Ok(SqliteStorage {
            path,
            config,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            known: tx::Known::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer connection actually runs with, for monitoring and tests.
    pub fn settings(&self) -> Result<SqliteSettings> {
        let conn = self.writer();
        let pragma = |name: &str| -> Result<rusqlite::types::Value> {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
                .map_err(map_err)
        };
        let int = |v: rusqlite::types::Value| match v {
            rusqlite::types::Value::Integer(i) => i,
            _ => -1,
        };
        let journal_mode = match pragma("journal_mode")? {
            rusqlite::types::Value::Text(t) => t,
            _ => String::new(),
        };
        Ok(SqliteSettings {
            journal_mode,
            durability: match int(pragma("synchronous")?) {
                2 | 3 => Durability::Full,
                _ => Durability::Normal,
            },
            busy_timeout: Duration::from_millis(int(pragma("busy_timeout")?).max(0) as u64),
            schema_version: int(pragma("user_version")?),
        })
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a write leaves the transaction open; it is rolled
        // back before the connection is used again (see `write`).
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take_reader(&self) -> Result<Connection> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        if let Some(c) = pooled {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| open_error(&self.path, e))?;
        open::configure(&conn, &self.config)?;
        conn.execute_batch("PRAGMA query_only = 1;")
            .map_err(map_err)?;
        Ok(conn)
    }

    fn return_reader(&self, conn: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.config.readers_max && conn.is_autocommit() {
            pool.push(conn);
        }
    }
}

impl Storage for SqliteStorage {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()> {
        let conn = self.take_reader()?;
        let result = conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(map_err)
            .and_then(|_| f(&Tx::new(&conn, &self.known)));
        let result = finish(&conn, result);
        self.return_reader(conn);
        result
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()> {
        let conn = self.writer();
        if !conn.is_autocommit() {
            // Left open by a panic in an earlier write.
            conn.execute_batch("ROLLBACK").map_err(map_err)?;
        }
        conn.prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(map_err)?;
        let result = f(&mut Tx::new(&conn, &self.known));
        finish(&conn, result)
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn backup(&self) -> Option<&dyn Backup> {
        Some(self)
    }
}
