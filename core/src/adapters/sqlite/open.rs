//! Opening a file: configure the connection, check the file is walletlog's,
//! switch it to WAL, set durability, migrate. All of it is safe to run
//! again after a failure, and is retried while several processes create
//! the same file at once.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::error::{map_err, open_error, storage};
use super::schema::{self, APPLICATION_ID};
use super::tx::finish;
use crate::config::{Durability, SqliteConfig};
use crate::domain::{Error, Result, StorageErrorKind};

/// Opens the writer connection of the file at `path`, prepared.
pub(super) fn open_writer(path: &Path, config: &SqliteConfig) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| open_error(path, e))?;
    configure(&conn, config)?;
    // While several processes create the same file, switching it to WAL
    // can report SQLITE_BUSY without calling the busy handler; the
    // whole (idempotent) preparation is retried until the busy timeout.
    let deadline = Instant::now() + config.busy_timeout;
    loop {
        match prepare_file(&conn, path, config.durability) {
            Err(Error::Storage(e))
                if e.kind == StorageErrorKind::Busy && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other?,
        }
    }
    Ok(conn)
}

pub(super) fn configure(conn: &Connection, config: &SqliteConfig) -> Result<()> {
    crate::config::check_busy_timeout(config.busy_timeout)?;
    conn.busy_timeout(config.busy_timeout).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Checks the file is walletlog's, switches it to WAL, sets durability and
/// brings the schema up to date. Safe to run again after a failure.
fn prepare_file(conn: &Connection, path: &Path, durability: Durability) -> Result<()> {
    check_ownership(conn, path)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| open_error(path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(storage(
            StorageErrorKind::Io,
            format!(
                "{} cannot use write-ahead logging (journal mode is {mode})",
                path.display()
            ),
        ));
    }
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
        .map_err(map_err)?;
    migrate(conn, path)
}

/// Refuses a SQLite file that is not a walletlog ledger, before changing
/// anything in it. Both facts are read in one snapshot: a concurrent
/// creator's migration sets the application id and creates the tables in
/// one transaction, so a fresh ledger is never mistaken for a foreign file.
fn check_ownership(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN")
        .map_err(|e| open_error(path, e))?;
    let facts = (|| {
        let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
        Ok::<_, rusqlite::Error>((app_id, tables))
    })()
    .map_err(|e| open_error(path, e));
    let (app_id, tables) = finish(conn, facts)?;
    if app_id == APPLICATION_ID || (app_id == 0 && tables == 0) {
        return Ok(());
    }
    Err(storage(
        StorageErrorKind::Corrupt,
        format!(
            "{} is a SQLite database but not a walletlog ledger",
            path.display()
        ),
    ))
}

fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)?;
    let result = (|| {
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(map_err)?;
        let latest = schema::latest_version();
        if version > latest {
            return Err(storage(
                StorageErrorKind::SchemaTooNew,
                format!(
                    "{} has schema version {version}, written by a newer walletlog; \
                     walletlog {} reads versions up to {latest}. Upgrade walletlog to open it",
                    path.display(),
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
            conn.execute_batch(sql).map_err(|e| {
                storage(
                    StorageErrorKind::Other,
                    format!("migration {} failed: {e}", i + 1),
                )
            })?;
        }
        if version < latest {
            conn.execute_batch(&format!(
                "PRAGMA user_version = {latest}; PRAGMA application_id = {APPLICATION_ID};"
            ))
            .map_err(map_err)?;
        }
        Ok(())
    })();
    finish(conn, result)
}
