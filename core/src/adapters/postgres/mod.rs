//! The PostgreSQL adapter: many processes on many machines, one ledger.
//!
//! Every write transaction takes the ledger's transaction-scoped advisory
//! lock before its first statement (`pg_advisory_xact_lock`, keyed by the schema), so sequences
//! and the audit chain have one order however many writers there are; the
//! lock is released by `COMMIT` or `ROLLBACK`, and by the server when a
//! connection dies. Writes run at `READ COMMITTED`: each statement after the
//! lock sees every earlier writer's commit. Reads run at `REPEATABLE READ,
//! READ ONLY`: one snapshot, never waiting for the lock. See docs/postgres.md
//! for what the lock costs.
//!
//! | file | job |
//! |---|---|
//! | `open.rs` | the URI, connections, the ledger's lock key, migrations |
//! | `schema.rs` | the embedded migrations, append-only triggers included |
//! | `client.rs` | a synchronous client over `tokio-postgres` that pipelines |
//! | `pool.rs` | the bounded connection pool and prepared statements |
//! | `tx.rs` | the port's reads and writes as SQL |
//! | `error.rs` | PostgreSQL errors as storage errors |

mod client;
mod error;
mod open;
mod pool;
mod schema;
mod tx;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::config::PostgresConfig;
use crate::domain::{Error, Result, RollupKey, StorageError, StorageErrorKind, Totals};
use crate::ports::{Backup, ReadTx, Storage, WriteTx};

pub use schema::latest_version as schema_version;

use tokio_postgres::SimpleQueryMessage;

use crate::adapters::stored::{corrupt, hash32};
use error::{commit_error, kind_of, map_err};
use pool::{Lent, Pool};
use tx::{Heads, RollupCache, Tx};

/// Settings read back from an open PostgreSQL ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// The schema holding the ledger (from the `search_path`).
    pub schema: String,
    pub schema_version: i64,
    /// `on` (durability full) or `off` (normal).
    pub synchronous_commit: String,
    pub pool_size: usize,
    /// The key of the ledger's advisory lock.
    pub lock_key: i64,
}

/// The PostgreSQL storage engine.
pub struct PostgresStorage {
    /// The location without its password, for messages.
    shown: String,
    schema: String,
    lock_key: i64,
    config: PostgresConfig,
    pool: Pool,
    /// The heads after this process's last commit, assumed by the next
    /// write when no other write of this process is in flight.
    assumed: Mutex<Option<Heads>>,
    /// Writes of this process in flight.
    writing: AtomicUsize,
    /// Writes left to run with heads read under the lock, after an
    /// assumption proved stale (another process wrote meanwhile).
    distrust: AtomicU32,
    /// Rollup rows as of the heads of this process's last commit: a write
    /// whose rows are all here is one round trip (see `tx::RollupCache`).
    rollups: Mutex<RollupCache>,
}

/// How one attempt at a write transaction ended.
enum Attempt {
    Committed {
        /// The heads the transaction began at.
        start: Heads,
        end: Option<Heads>,
        /// The rollup rows it read or wrote, as committed.
        seen: HashMap<RollupKey, Option<Totals>>,
    },
    /// Start again from scratch, with heads read under the lock. `missed`:
    /// the heads were right, but an event taken as new was not.
    Retry {
        error: crate::domain::Error,
        missed: bool,
    },
    /// The write closure refused (a conflict, an invalid item): rolled
    /// back, nothing else wrong.
    Refused(crate::domain::Error),
    Failed(crate::domain::Error),
}

/// Writes to run with heads read under the lock after a stale assumption:
/// while another process writes too, assuming would mostly fail.
const DISTRUST_WRITES: u32 = 64;

/// Decrements the in-flight count when a write ends, however it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PostgresStorage {
    /// Connects to the server at `uri` (a libpq URI), creating or migrating
    /// the ledger's schema. A schema from a newer walletlog, or one that is
    /// not a walletlog ledger, is refused.
    pub fn open(uri: &str, config: PostgresConfig) -> Result<Self> {
        config.check()?;
        let shown = crate::config::Location::Postgres(uri.to_owned()).to_string();
        let client_config = open::parse(uri, &shown)?;
        let mut first = open::connect(&client_config, &config, &shown)?;
        let create = config.create_if_missing;
        let (schema, lock_key) = open::identify(&mut first, &shown, create)?;
        open::migrate(&mut first, lock_key, &schema, &shown, create)?;
        let connect_shown = shown.clone();
        let connect_config = config.clone();
        let pool = Pool::new(
            config.pool_size,
            config.pool_timeout,
            first,
            Box::new(move || open::connect(&client_config, &connect_config, &connect_shown)),
        );
        Ok(PostgresStorage {
            shown,
            schema,
            lock_key,
            config,
            pool,
            assumed: Mutex::new(None),
            writing: AtomicUsize::new(0),
            distrust: AtomicU32::new(0),
            rollups: Mutex::new(RollupCache::default()),
        })
    }

    /// What the ledger's connections run with, for monitoring and tests.
    pub fn settings(&self) -> Result<PostgresSettings> {
        let mut conn = self.pool.get()?;
        let statement = conn.statement(
            "SELECT (SELECT max(version) FROM walletlog_schema)::bigint, \
                    current_setting('synchronous_commit')",
        )?;
        let rows = conn.client.query(&statement, &[]).map_err(map_err)?;
        let row = rows.first().ok_or_else(|| {
            Error::Storage(StorageError::new(
                StorageErrorKind::Other,
                "no settings row",
            ))
        })?;
        Ok(PostgresSettings {
            schema: self.schema.clone(),
            schema_version: row.get(0),
            synchronous_commit: row.get(1),
            pool_size: self.config.pool_size,
            lock_key: self.lock_key,
        })
    }

    /// A pooled connection with a transaction begun by `begin`. A pooled
    /// connection found dead (the server restarted since it was last used)
    /// is dropped and the next one tried: nothing was sent on it yet.
    fn begin(&self, begin: &str) -> Result<(Lent<'_>, Vec<SimpleQueryMessage>)> {
        loop {
            let mut conn = self.pool.get()?;
            conn.in_transaction = true;
            match conn.client.simple_query(begin) {
                Ok(messages) => return Ok((conn, messages)),
                Err(e) if kind_of(&e) == StorageErrorKind::Unavailable && !conn.fresh => {
                    // Stays marked in a transaction: closed when dropped.
                    continue;
                }
                Err(e) => {
                    // A refusal (a lock wait past lock_timeout) leaves the
                    // connection usable once rolled back.
                    if e.as_db_error().is_some() && conn.client.batch_execute("ROLLBACK").is_ok() {
                        conn.in_transaction = false;
                    }
                    return Err(map_err(e));
                }
            }
        }
    }
}

/// The heads from the rows of `write`'s first round trip: statement 2 gives
/// the last event sequence, statement 3 the last audit record, if any.
fn heads(messages: &[SimpleQueryMessage]) -> Result<Heads> {
    let mut statement = 0;
    let mut heads = Heads {
        event_sequence: 0,
        audit: None,
    };
    let damaged = |what: &str| corrupt("ledger head", what);
    for m in messages {
        match m {
            SimpleQueryMessage::CommandComplete(_) => statement += 1,
            SimpleQueryMessage::Row(row) if statement == 2 => {
                heads.event_sequence = row
                    .get(0)
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| damaged("the last event sequence"))?;
            }
            SimpleQueryMessage::Row(row) if statement == 3 => {
                let sequence = row
                    .get(0)
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| damaged("the last audit sequence"))?;
                let hash = row
                    .get(1)
                    .and_then(crate::encoding::unhex)
                    .ok_or_else(|| damaged("the last audit hash"))?;
                heads.audit = Some((sequence, hash32("audit.hash", &hash)?));
            }
            _ => {}
        }
    }
    Ok(heads)
}

impl Attempt {
    fn into_result(self) -> Result<()> {
        match self {
            Attempt::Committed { .. } => Ok(()),
            Attempt::Retry { error, .. } | Attempt::Refused(error) | Attempt::Failed(error) => {
                Err(error)
            }
        }
    }
}

impl PostgresStorage {
    /// The heads to assume, unless recent assumptions proved stale.
    fn assumption(&self) -> Option<Heads> {
        let left = self.distrust.load(Ordering::SeqCst);
        if left > 0 {
            self.distrust.store(left - 1, Ordering::SeqCst);
            return None;
        }
        *self.assumed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_heads(&self) {
        *self.assumed.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, RollupCache> {
        self.rollups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn attempt_assuming(
        &self,
        f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>,
        heads: Heads,
    ) -> Attempt {
        let mut conn = match self.pool.get() {
            Ok(c) => c,
            Err(e) => return Attempt::Failed(e),
        };
        let begin = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({})",
            self.lock_key
        );
        let cache = self.cache().holds_at(heads).then_some(&self.rollups);
        run_write(&mut conn, heads, self.lock_key, Some(begin), cache, f)
    }

    fn attempt_reading_heads(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Attempt {
        // One round trip: begin, take the ledger's lock, then (each
        // statement with a snapshot taken after the lock) read the heads.
        let begin = format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; \
             SELECT pg_advisory_xact_lock({}); \
             SELECT coalesce(max(sequence), 0)::text FROM events; \
             SELECT sequence::text AS s, encode(hash, 'hex') FROM audit ORDER BY audit.sequence DESC LIMIT 1",
            self.lock_key
        );
        let (mut conn, messages) = match self.begin(&begin) {
            Ok(x) => x,
            Err(e) => return Attempt::Failed(e),
        };
        let heads = match heads(&messages) {
            Ok(h) => h,
            Err(e) => return Attempt::Failed(finish(&mut conn, Err::<(), _>(e)).unwrap_err()),
        };
        run_write(&mut conn, heads, self.lock_key, None, None, f)
    }
}

/// Runs `f` in a write transaction on `conn` and commits it.
fn run_write(
    conn: &mut Lent<'_>,
    heads: Heads,
    lock_key: i64,
    begin: Option<String>,
    cache: Option<&Mutex<RollupCache>>,
    f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>,
) -> Attempt {
    let mut tx = Tx::writing(conn, heads, lock_key, begin, cache);
    let ran = f(&mut tx);
    let ran_refused = matches!(ran, Err(Error::Conflict(_) | Error::Validation(_)));
    // A run that failed after a provisional answer may have failed because
    // of it: it runs again with exact ones, so that no error rests on a guess.
    let guessed = ran.is_err() && tx.answered_provisionally();
    let result = ran.and_then(|()| tx.commit());
    let (stale, missed) = (tx.must_retry(), tx.missed());
    let (retry, missed) = (stale || guessed, missed || (guessed && !stale));
    let end = tx.final_heads();
    let seen = tx.take_seen();
    drop(tx);
    match result {
        Ok(()) => Attempt::Committed {
            start: heads,
            end,
            seen,
        },
        Err(error) => {
            if conn.in_transaction && conn.client.batch_execute("ROLLBACK").is_ok() {
                conn.in_transaction = false;
            }
            if retry {
                Attempt::Retry { error, missed }
            } else if ran_refused {
                // The caller's own refusal: rolled back, the heads intact.
                Attempt::Refused(error)
            } else {
                Attempt::Failed(error)
            }
        }
    }
}

/// Commits on success; rolls back (keeping the first error) on failure.
fn finish<T>(conn: &mut Lent<'_>, result: Result<T>) -> Result<T> {
    match result {
        Ok(v) => {
            conn.client.batch_execute("COMMIT").map_err(commit_error)?;
            conn.in_transaction = false;
            Ok(v)
        }
        Err(e) => {
            if conn.client.batch_execute("ROLLBACK").is_ok() {
                conn.in_transaction = false;
            }
            Err(e)
        }
    }
}

impl Storage for PostgresStorage {
    fn read(&self, f: &mut dyn FnMut(&dyn ReadTx) -> Result<()>) -> Result<()> {
        let (mut conn, _) = self.begin("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        let result = f(&Tx::new(&mut conn));
        finish(&mut conn, result)
    }

    /// A write transaction. When no other write of this process is in
    /// flight, it assumes the heads of this process's last commit and sends
    /// `BEGIN` and the lock with its first statement, which checks the
    /// assumption under the lock: one round trip for a single ingest whose
    /// rollup rows the cache knows, two otherwise (the insert, then the
    /// audit record and rollups with `COMMIT`). Otherwise, or when the
    /// assumption was stale, it reads the heads with `BEGIN` and the lock
    /// first.
    fn write(&self, f: &mut dyn FnMut(&mut dyn WriteTx) -> Result<()>) -> Result<()> {
        let alone = self.writing.fetch_add(1, Ordering::SeqCst) == 0;
        let _in_flight = InFlight(&self.writing);
        let mut assumed = if alone { self.assumption() } else { None };
        for _ in 0..4 {
            let attempt = match assumed.take() {
                Some(heads) => self.attempt_assuming(f, heads),
                None => self.attempt_reading_heads(f),
            };
            match attempt {
                Attempt::Committed { start, end, seen } => {
                    *self.assumed.lock().unwrap_or_else(|p| p.into_inner()) = end;
                    self.cache().committed(start, end, seen);
                    return Ok(());
                }
                // The heads were right: only this attempt's guess was not.
                Attempt::Retry { missed: true, .. } => {}
                Attempt::Retry { .. } => {
                    self.forget_heads();
                    self.cache().forget();
                    self.distrust.store(DISTRUST_WRITES, Ordering::SeqCst);
                }
                Attempt::Refused(e) => return Err(e),
                Attempt::Failed(e) => {
                    self.forget_heads();
                    self.cache().forget();
                    return Err(e);
                }
            }
        }
        // Only a connection found dead every time gets here.
        self.attempt_reading_heads(f).into_result()
    }

    fn describe(&self) -> String {
        format!("postgres:{} (schema {})", self.shown, self.schema)
    }

    fn backup(&self) -> Option<&dyn Backup> {
        Some(self)
    }
}

impl Backup for PostgresStorage {
    /// PostgreSQL has its own tools; a file copy from here would be a
    /// second, weaker one.
    fn backup_to(&self, _dest: &Path) -> Result<()> {
        Err(Error::Storage(StorageError::new(
            StorageErrorKind::Unsupported,
            format!(
                "{} is backed up by PostgreSQL's own tools, not to a file: use pg_dump \
                 (pg_dump --schema={} for this ledger's schema), or walletlog export for a \
                 logical copy that imports into any engine",
                self.describe(),
                self.schema
            ),
        )))
    }
}
