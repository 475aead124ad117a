//! The SQLite adapter: one file, WAL, `BEGIN IMMEDIATE` writes.
//!
//! One writer connection (behind a mutex) serves this process's writes;
//! `BEGIN IMMEDIATE` takes SQLite's write lock at the start of every write
//! transaction, so check-and-insert is atomic across processes too, and a
//! contended writer waits up to the busy timeout instead of failing. Reads
//! run on a small pool of connections, each in a deferred transaction: one
//! consistent snapshot, concurrent with the writer thanks to WAL.

#[macro_use]
mod rows;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, ToSql};

use crate::domain::{
    AuditRecord, Currency, Error, EventId, IdempotencyKey, ListQuery, Money, Order, Provider,
    ProviderEventId, Result, StorageError, StorageErrorKind, Timestamp, Totals, WalletId,
    WalletTransactionEvent,
};
use crate::ports::{AmountRow, ReadTx, RollupRow, Storage, WriteTx};

pub use schema::{latest_version as schema_version, ALL_TIME_BUCKET, APPLICATION_ID};

use rows::{audit_from_row, event_from_row, totals_from_row};

/// How hard a commit tries to survive a power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: the WAL is fsynced at every commit. An
    /// acknowledged event survives a crash of the process or the machine.
    #[default]
    Full,
    /// `synchronous = NORMAL`: no fsync at commit. An acknowledged event
    /// survives a crash of the process, but a power loss may lose the last
    /// commits (never corrupting the file).
    Normal,
}

/// Settings of the SQLite adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// How long a writer waits for another writer (thread or process).
    pub busy_timeout: Duration,
    /// Most idle read connections kept open.
    pub readers_max: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(30),
            readers_max: 8,
        }
    }
}

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
    options: SqliteOptions,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) a walletlog database file and brings its
    /// schema up to date. A file from a newer walletlog, or one that is not
    /// a walletlog database, is refused.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(|e| open_error(&path, e))?;
        configure(&conn, &options)?;
        // While several processes create the same file, switching it to WAL
        // can report SQLITE_BUSY without calling the busy handler; the
        // whole (idempotent) preparation is retried until the busy timeout.
        let deadline = std::time::Instant::now() + options.busy_timeout;
        loop {
            match prepare_file(&conn, &path, options.durability) {
                Err(Error::Storage(e))
                    if e.kind == StorageErrorKind::Busy && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => break other?,
            }
        }
        register_money_add(&conn)?;
        Ok(SqliteStorage {
            path,
            options,
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
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
        configure(&conn, &self.options)?;
        conn.execute_batch("PRAGMA query_only = 1;")
            .map_err(map_err)?;
        Ok(conn)
    }

    fn return_reader(&self, conn: Connection) {
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < self.options.readers_max && conn.is_autocommit() {
            pool.push(conn);
        }
    }
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

fn configure(conn: &Connection, options: &SqliteOptions) -> Result<()> {
    conn.busy_timeout(options.busy_timeout).map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

const MONEY_OVERFLOW: &str = "wl_money_add: the sum exceeds 10^38";

/// `wl_money_add(a, b)`: the exact sum of two decimal texts, by [`Money`].
fn register_money_add(conn: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "wl_money_add",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let arg = |i: usize| -> rusqlite::Result<Money> {
                let text = ctx
                    .get_raw(i)
                    .as_str()
                    .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
                Money::parse(text).ok_or_else(|| {
                    rusqlite::Error::UserFunctionError(
                        format!("wl_money_add: {text:?} is not a decimal").into(),
                    )
                })
            };
            let sum = arg(0)?
                .checked_add(arg(1)?)
                .map_err(|_| rusqlite::Error::UserFunctionError(MONEY_OVERFLOW.into()))?;
            Ok(sum.to_string())
        },
    )
    .map_err(map_err)
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
                    "{} has schema version {version}, written by a newer walletlog; walletlog {} reads versions up to {latest}. Upgrade walletlog to open it",
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

/// Commits on success; rolls back (keeping the first error) on failure.
fn finish<T>(conn: &Connection, result: Result<T>) -> Result<T> {
    match result {
        Ok(v) => match conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
        {
            Ok(_) => Ok(v),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(map_err(e))
            }
        },
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
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
            .and_then(|_| f(&Tx::new(&conn)));
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
        let result = f(&mut Tx::new(&conn));
        finish(&conn, result)
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    /// SQLite's online backup, in one step, so the copy is one snapshot: it
    /// reads inside one read transaction (WAL lets writers go on) and writes
    /// `dest.partial`, which is fsynced and renamed into place only when whole.
    fn backup(&self, dest: &Path) -> Result<()> {
        if dest.exists() {
            return Err(crate::domain::ValidationError::new(
                "destination",
                format!(
                    "{} already exists; a backup never overwrites a file",
                    dest.display()
                ),
            )
            .into());
        }
        let mut partial = dest.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let _ = std::fs::remove_file(&partial);
        let result = self.backup_to(&partial).and_then(|()| {
            let io = |e: std::io::Error| {
                storage(
                    StorageErrorKind::Io,
                    format!("cannot finish the backup {}: {e}", dest.display()),
                )
            };
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            std::fs::rename(&partial, dest).map_err(io)?;
            if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
            }
            Ok(())
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }
}

impl SqliteStorage {
    fn backup_to(&self, partial: &Path) -> Result<()> {
        let source = self.take_reader()?;
        let mut copy = Connection::open(partial).map_err(|e| open_error(partial, e))?;
        let deadline = std::time::Instant::now() + self.options.busy_timeout;
        let result = (|| {
            let backup = rusqlite::backup::Backup::new(&source, &mut copy).map_err(map_err)?;
            loop {
                // -1: every page in one step, one read transaction.
                match backup.step(-1).map_err(map_err)? {
                    rusqlite::backup::StepResult::Done => return Ok(()),
                    _ if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => {
                        return Err(storage(
                            StorageErrorKind::Busy,
                            "the backup could not read the ledger before the busy timeout",
                        ))
                    }
                }
            }
        })();
        self.return_reader(source);
        result
    }
}

/// A transaction on one connection; reads and, on the writer, writes.
struct Tx<'c> {
    conn: &'c Connection,
    /// The two statements a batch runs per event, held for the whole
    /// transaction instead of fetched from the cache every time.
    insert_event: Option<rusqlite::CachedStatement<'c>>,
    append_audit: Option<rusqlite::CachedStatement<'c>>,
}

impl<'c> Tx<'c> {
    fn new(conn: &'c Connection) -> Self {
        Tx {
            conn,
            insert_event: None,
            append_audit: None,
        }
    }
}

/// The statement in `slot`, prepared (through the cache) on first use.
fn held<'s, 'c>(
    conn: &'c Connection,
    slot: &'s mut Option<rusqlite::CachedStatement<'c>>,
    sql: &str,
) -> Result<&'s mut rusqlite::CachedStatement<'c>> {
    if slot.is_none() {
        *slot = Some(conn.prepare_cached(sql).map_err(map_err)?);
    }
    slot.as_mut()
        .ok_or_else(|| storage(StorageErrorKind::Other, "statement not prepared"))
}

impl Tx<'_> {
    fn one_event(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
    ) -> Result<Option<WalletTransactionEvent>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let row = stmt
            .query_row(params, |r| Ok(event_from_row(r)))
            .optional()
            .map_err(map_err)?;
        row.transpose()
    }

    fn events(
        &self,
        sql: &str,
        params: &[(&str, &dyn ToSql)],
    ) -> Result<Vec<WalletTransactionEvent>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let rows = stmt
            .query_map(params, |r| Ok(event_from_row(r)))
            .map_err(map_err)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.map_err(map_err)??);
        }
        Ok(out)
    }
}

impl ReadTx for Tx<'_> {
    fn event_by_id(&self, id: &EventId) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE event_id = ?1"
        );
        self.one_event(sql, &[&id.as_bytes().as_slice()])
    }

    fn event_by_provider_event_id(
        &self,
        p: &Provider,
        id: &ProviderEventId,
    ) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE provider = ?1 AND provider_event_id = ?2"
        );
        self.one_event(sql, &[&p.as_str(), &id.as_str()])
    }

    fn event_by_idempotency_key(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE idempotency_key = ?1"
        );
        self.one_event(sql, &[&key.as_str()])
    }

    fn list(&self, q: &ListQuery, fetch: usize) -> Result<Vec<WalletTransactionEvent>> {
        let mut sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE wallet_id = :wallet"
        )
        .to_owned();
        let wallet = q.wallet_id.as_str();
        let after_at = q.after.map(|a| a.occurred_at.as_micros());
        let after_seq = q.after.map(|a| a.sequence as i64);
        let since = q.since.map(|t| t.as_micros());
        let until = q.until.map(|t| t.as_micros());
        let currency = q.currency.as_ref().map(|c| c.as_str());
        let fetch = fetch as i64;
        let mut params: Vec<(&str, &dyn ToSql)> = vec![(":wallet", &wallet), (":fetch", &fetch)];
        if let (Some(at), Some(seq)) = (&after_at, &after_seq) {
            // A range on the index column first, so SQLite seeks to the cursor.
            sql.push_str(match q.order {
                Order::Desc => " AND occurred_at <= :at AND (occurred_at < :at OR sequence < :seq)",
                Order::Asc => " AND occurred_at >= :at AND (occurred_at > :at OR sequence > :seq)",
            });
            params.push((":at", at));
            params.push((":seq", seq));
        }
        if let Some(s) = &since {
            sql.push_str(" AND occurred_at >= :since");
            params.push((":since", s));
        }
        if let Some(u) = &until {
            sql.push_str(" AND occurred_at < :until");
            params.push((":until", u));
        }
        if let Some(types) = &q.event_types {
            let codes: Vec<String> = types.iter().map(|t| t.code().to_string()).collect();
            sql.push_str(&format!(" AND event_type IN ({})", codes.join(",")));
        }
        if let Some(c) = &currency {
            sql.push_str(" AND currency = :currency");
            params.push((":currency", c));
        }
        sql.push_str(match q.order {
            Order::Desc => " ORDER BY occurred_at DESC, sequence DESC LIMIT :fetch",
            Order::Asc => " ORDER BY occurred_at ASC, sequence ASC LIMIT :fetch",
        });
        self.events(&sql, &params)
    }

    fn events_after(&self, sequence: u64, limit: usize) -> Result<Vec<WalletTransactionEvent>> {
        let sql = concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE sequence > :after ORDER BY sequence LIMIT :limit"
        );
        let (after, limit) = (sequence as i64, limit as i64);
        self.events(sql, &[(":after", &after), (":limit", &limit)])
    }

    fn last_event_sequence(&self) -> Result<u64> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(sequence), 0) FROM events")
            .map_err(map_err)?;
        let n: i64 = stmt.query_row([], |r| r.get(0)).map_err(map_err)?;
        Ok(n as u64)
    }

    fn balances(&self, wallet: &WalletId) -> Result<Vec<(Currency, Totals)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT available, held, event_count, last_occurred_at, currency FROM rollups WHERE wallet_id = ?1 AND bucket = 9223372036854775807",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map([wallet.as_str()], |r| Ok(currency_totals(r)))
            .map_err(map_err)?;
        rows.map(|r| r.map_err(map_err)?).collect()
    }

    fn buckets_before(
        &self,
        wallet: &WalletId,
        before: i64,
        each: &mut dyn FnMut(Currency, Totals) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT available, held, event_count, last_occurred_at, currency FROM rollups WHERE wallet_id = ?1 AND bucket < ?2",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(params![wallet.as_str(), before], |r| Ok(currency_totals(r)))
            .map_err(map_err)?;
        for row in rows {
            let (c, t) = row.map_err(map_err)??;
            each(c, t)?;
        }
        Ok(())
    }

    fn amounts_between(
        &self,
        wallet: &WalletId,
        from: Timestamp,
        to: Timestamp,
        each: &mut dyn FnMut(AmountRow) -> Result<()>,
    ) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT event_type, amount, currency, occurred_at, sequence FROM events WHERE wallet_id = ?1 AND occurred_at BETWEEN ?2 AND ?3",
            )
            .map_err(map_err)?;
        let rows = stmt
            .query_map(
                params![wallet.as_str(), from.as_micros(), to.as_micros()],
                |r| Ok(rows::amount_from_row(r)),
            )
            .map_err(map_err)?;
        for row in rows {
            each(row.map_err(map_err)??)?;
        }
        Ok(())
    }

    fn rollups(&self, each: &mut dyn FnMut(RollupRow) -> Result<()>) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare("SELECT available, held, event_count, last_occurred_at, currency, wallet_id, bucket FROM rollups")
            .map_err(map_err)?;
        let mut rows = stmt.query([]).map_err(map_err)?;
        while let Some(r) = rows.next().map_err(map_err)? {
            let (currency, totals) = currency_totals(r)?;
            let wallet: String = r.get(5).map_err(map_err)?;
            let bucket: i64 = r.get(6).map_err(map_err)?;
            let wallet_id =
                WalletId::new(wallet).map_err(|e| rows::corrupt("rollup", &e.to_string()))?;
            each(RollupRow {
                wallet_id,
                currency,
                bucket: (bucket != ALL_TIME_BUCKET).then_some(bucket),
                totals,
            })?;
        }
        Ok(())
    }

    fn audit_after(&self, sequence: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let sql = concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit WHERE sequence > ?1 ORDER BY sequence LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        let rows = stmt
            .query_map(params![sequence as i64, limit as i64], |r| {
                Ok(audit_from_row(r))
            })
            .map_err(map_err)?;
        rows.map(|r| r.map_err(map_err)?).collect()
    }

    fn last_audit(&self) -> Result<Option<(u64, [u8; 32])>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT sequence, hash FROM audit ORDER BY sequence DESC LIMIT 1")
            .map_err(map_err)?;
        let row = stmt
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .optional()
            .map_err(map_err)?;
        row.map(|(seq, hash)| Ok((seq as u64, rows::hash32("audit.hash", &hash)?)))
            .transpose()
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
            .map_err(map_err)?;
        stmt.query_row([key], |r| r.get(0))
            .optional()
            .map_err(map_err)
    }
}

fn currency_totals(r: &rusqlite::Row<'_>) -> Result<(Currency, Totals)> {
    let totals = totals_from_row(r)?;
    let currency: String = r.get(4).map_err(map_err)?;
    let currency = Currency::new(currency).map_err(|e| rows::corrupt("rollup", &e.to_string()))?;
    Ok((currency, totals))
}

impl WriteTx for Tx<'_> {
    fn insert_event_if_new(&mut self, e: &WalletTransactionEvent) -> Result<bool> {
        // The unique indexes on the three keys do the check: DO NOTHING
        // covers uniqueness only, so any other constraint still fails loudly.
        let stmt = held(
            self.conn,
            &mut self.insert_event,
            concat!(
                "INSERT INTO events (",
                event_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING"
            ),
        )?;
        let inserted = stmt
            .execute(params![
                e.sequence as i64,
                e.event_id.as_bytes().as_slice(),
                e.wallet_id.as_str(),
                e.provider.as_str(),
                e.event_type.code(),
                e.amount.to_string(),
                e.currency.as_str(),
                e.provider_event_id.as_ref().map(|p| p.as_str()),
                e.idempotency_key.as_ref().map(|k| k.as_str()),
                e.metadata.as_json(),
                e.occurred_at.as_micros(),
                e.created_at.as_micros(),
            ])
            .map_err(map_err)?;
        Ok(inserted == 1)
    }

    fn append_audit(&mut self, r: &AuditRecord) -> Result<()> {
        let stmt = held(
            self.conn,
            &mut self.append_audit,
            concat!(
                "INSERT INTO audit (",
                audit_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
        )?;
        stmt.execute(params![
            r.sequence as i64,
            r.recorded_at.as_micros(),
            r.action.code(),
            r.event_id.as_bytes().as_slice(),
            r.event_sequence as i64,
            r.matched_on.map(|k| k.code()),
            r.actor,
            r.fingerprint.as_slice(),
            r.body_sha256.as_ref().map(|h| h.as_slice()),
            r.prev_hash.as_slice(),
            r.hash.as_slice(),
        ])
        .map_err(map_err)?;
        Ok(())
    }

    fn add_to_rollup(
        &mut self,
        wallet: &WalletId,
        currency: &Currency,
        bucket: Option<i64>,
        delta: &Totals,
    ) -> Result<()> {
        // One statement: the exact sum is done by `wl_money_add`.
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO rollups (wallet_id, bucket, currency, available, held, event_count, last_occurred_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (wallet_id, bucket, currency) DO UPDATE SET \
                 available = wl_money_add(available, excluded.available), \
                 held = wl_money_add(held, excluded.held), \
                 event_count = event_count + excluded.event_count, \
                 last_occurred_at = max(coalesce(last_occurred_at, excluded.last_occurred_at), \
                                        coalesce(excluded.last_occurred_at, last_occurred_at))",
            )
            .map_err(map_err)?;
        stmt.execute(params![
            wallet.as_str(),
            bucket.unwrap_or(ALL_TIME_BUCKET),
            currency.as_str(),
            delta.available.to_string(),
            delta.held.to_string(),
            delta.event_count as i64,
            delta.last_occurred_at.map(|x| x.as_micros()),
        ])
        .map_err(|e| {
            if e.to_string().contains(MONEY_OVERFLOW) {
                Error::Validation(crate::domain::ValidationError::new(
                    "amount",
                    "would take the wallet's balance beyond 10^38, which cannot be held exactly",
                ))
            } else {
                map_err(e)
            }
        })?;
        Ok(())
    }

    fn set_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
            .map_err(map_err)?;
        stmt.execute(params![key, value]).map_err(map_err)?;
        Ok(())
    }
}

fn storage(kind: StorageErrorKind, message: impl Into<String>) -> Error {
    Error::Storage(StorageError::new(kind, message))
}

fn open_error(path: &Path, e: rusqlite::Error) -> Error {
    match map_err(e) {
        Error::Storage(s) => storage(
            s.kind,
            format!("cannot open {}: {}", path.display(), s.message),
        ),
        other => other,
    }
}

pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as C;
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::DatabaseBusy | C::DatabaseLocked => StorageErrorKind::Busy,
            C::NotADatabase | C::DatabaseCorrupt => StorageErrorKind::Corrupt,
            C::CannotOpen
            | C::SystemIoFailure
            | C::DiskFull
            | C::ReadOnly
            | C::PermissionDenied => StorageErrorKind::Io,
            _ => StorageErrorKind::Other,
        },
        _ => StorageErrorKind::Other,
    };
    storage(kind, e.to_string())
}
