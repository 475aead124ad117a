//! A bounded pool of connections, each with its prepared statements.
//!
//! At most `size` connections are open at once. A caller that finds none
//! free waits up to the pool timeout, then fails with a `busy` storage
//! error that says so. A connection the server closed (a restart, a
//! network cut) is dropped when it is handed back or taken, and a new one
//! is opened on demand: writers recover without being restarted.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_postgres::Statement;

use super::client::Client;

use super::error::{map_err, storage};
use crate::domain::{Result, StorageErrorKind};

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    statements: HashMap<String, Statement>,
    /// Opened for the call it is lent to, not taken from the idle ones.
    pub(super) fresh: bool,
    /// A transaction is open: set by `begin`, cleared by `commit`/`rollback`.
    /// A connection handed back with one open (a panic) is closed, so the
    /// server rolls it back.
    pub(super) in_transaction: bool,
}

impl Conn {
    pub(super) fn new(client: Client) -> Self {
        Conn {
            client,
            statements: HashMap::new(),
            fresh: true,
            in_transaction: false,
        }
    }

    /// `sql` prepared on this connection, once.
    pub(super) fn statement(&mut self, sql: &str) -> Result<Statement> {
        self.prepared(sql).map_err(map_err)
    }

    /// [`statement`](Self::statement) with the client's own error.
    pub(super) fn prepared(
        &mut self,
        sql: &str,
    ) -> std::result::Result<Statement, tokio_postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

type Connect = dyn Fn() -> Result<Conn> + Send + Sync;

struct State {
    idle: Vec<Conn>,
    /// Connections open, idle or lent.
    open: usize,
}

pub(super) struct Pool {
    size: usize,
    timeout: Duration,
    connect: Box<Connect>,
    state: Mutex<State>,
    freed: Condvar,
}

impl Pool {
    pub(super) fn new(
        size: usize,
        timeout: Duration,
        mut first: Conn,
        connect: Box<Connect>,
    ) -> Pool {
        first.fresh = false;
        Pool {
            size,
            timeout,
            connect,
            state: Mutex::new(State {
                idle: vec![first],
                open: 1,
            }),
            freed: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection, idle or new, waiting up to the pool timeout for one.
    pub(super) fn get(&self) -> Result<Lent<'_>> {
        let deadline = Instant::now() + self.timeout;
        let mut state = self.state();
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_closed_now() {
                    state.open -= 1;
                    continue;
                }
                return Ok(Lent {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match (self.connect)() {
                    Ok(conn) => Ok(Lent {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        self.forget();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(storage(
                    StorageErrorKind::Busy,
                    format!(
                        "all {} PostgreSQL connections of this ledger stayed in use for {} ms \
                         (pool_timeout_ms); raise pool_size, or shorten the calls holding them",
                        self.size,
                        self.timeout.as_millis()
                    ),
                ));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// A lent connection was closed instead of handed back.
    fn forget(&self) {
        self.state().open -= 1;
        self.freed.notify_one();
    }

    fn give_back(&self, mut conn: Conn) {
        conn.fresh = false;
        if conn.in_transaction || conn.client.is_closed() {
            drop(conn);
            self.forget();
            return;
        }
        self.state().idle.push(conn);
        self.freed.notify_one();
    }
}

/// A connection lent by the pool, handed back when dropped.
pub(super) struct Lent<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
}

impl std::ops::Deref for Lent<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn
            .as_ref()
            .expect("a lent connection is present until dropped")
    }
}

impl std::ops::DerefMut for Lent<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn
            .as_mut()
            .expect("a lent connection is present until dropped")
    }
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}
