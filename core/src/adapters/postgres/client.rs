//! A synchronous client over `tokio-postgres`, on a runtime of its own.
//!
//! The synchronous `postgres` crate waits for each statement's answer
//! before sending the next. A round trip to the server costs about as much
//! as a commit's fsync, so this client also sends requests back to back and
//! waits once: the ledger's lock with the first statement of a write
//! ([`Client::simple_then_query`]), its last statement with `COMMIT`
//! ([`Client::execute_then_simple`]). A whole write that is one statement
//! goes alone, committed by the server in an implicit transaction
//! ([`Client::execute_committing`]).

use std::future::Future;
use std::task::Poll;

use futures_util::{future, pin_mut, TryStreamExt};
use tokio::runtime::{Builder, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Config, Error, NoTls, Row, SimpleQueryMessage, Statement};

use super::error::{map_err, storage};
use crate::domain::{Result, StorageErrorKind};

pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

/// What a statement sent with a simple query after it got back: its own
/// result, and the simple query's, `None` when that was not sent.
pub(super) type ExecutedThenSimple = (
    std::result::Result<u64, Error>,
    Option<std::result::Result<Vec<SimpleQueryMessage>, Error>>,
);

/// One connection: the client, and the runtime that drives its socket
/// while a call waits.
pub(super) struct Client {
    runtime: Runtime,
    client: tokio_postgres::Client,
}

impl Client {
    pub(super) fn connect(config: &Config) -> std::result::Result<Client, ConnectError> {
        let runtime = Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(ConnectError::Runtime)?;
        let (client, connection) = runtime
            .block_on(config.connect(NoTls))
            .map_err(ConnectError::Postgres)?;
        // Polled whenever a call of this client waits on the runtime.
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(Client { runtime, client })
    }

    /// The server closed the connection, or it broke.
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// [`is_closed`](Self::is_closed), after letting the connection's task
    /// read what the socket holds: an idle connection the server closed
    /// (a restart, a terminated backend) is then known closed before
    /// anything is sent on it.
    pub(super) fn is_closed_now(&self) -> bool {
        if self.client.is_closed() {
            return true;
        }
        self.runtime.block_on(async {
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
        });
        self.client.is_closed()
    }

    pub(super) fn prepare(&self, sql: &str) -> std::result::Result<Statement, Error> {
        self.runtime.block_on(self.client.prepare(sql))
    }

    pub(super) fn query(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> std::result::Result<Vec<Row>, Error> {
        self.runtime.block_on(self.client.query(statement, params))
    }

    pub(super) fn execute(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> std::result::Result<u64, Error> {
        self.runtime
            .block_on(self.client.execute(statement, params))
    }

    pub(super) fn simple_query(
        &self,
        sql: &str,
    ) -> std::result::Result<Vec<SimpleQueryMessage>, Error> {
        self.runtime.block_on(self.client.simple_query(sql))
    }

    pub(super) fn batch_execute(&self, sql: &str) -> std::result::Result<(), Error> {
        self.runtime.block_on(self.client.batch_execute(sql))
    }

    /// Streams the rows of `statement` to `each`: the client's error, or
    /// what `each` made of the rows.
    pub(super) fn each_row(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&Row) -> Result<()>,
    ) -> std::result::Result<Result<()>, Error> {
        self.runtime.block_on(async {
            let rows = self
                .client
                .query_raw(statement, params.iter().copied())
                .await?;
            pin_mut!(rows);
            while let Some(row) = rows.try_next().await? {
                if let Err(e) = each(&row) {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(()))
        })
    }

    /// `simple` then `statement`, sent together: one round trip. The server
    /// runs them in that order; when `simple` fails, so does `statement`
    /// (the transaction is aborted).
    pub(super) fn simple_then_query(
        &self,
        simple: &str,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> (
        std::result::Result<Vec<SimpleQueryMessage>, Error>,
        std::result::Result<Vec<Row>, Error>,
    ) {
        self.runtime.block_on(future::join(
            self.client.simple_query(simple),
            self.client.query(statement, params),
        ))
    }

    /// `statement` alone, outside any transaction block: the server runs it
    /// in an implicit transaction and commits it before it answers, as it
    /// does a plain `INSERT`. The outer error when nothing was sent (the
    /// parameters would not encode, or the connection was already closed);
    /// otherwise the statement's result, which includes its commit (the
    /// client answers only at the server's `ReadyForQuery`, after it).
    pub(super) fn execute_committing(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
    ) -> std::result::Result<std::result::Result<u64, Error>, Error> {
        self.runtime.block_on(async {
            let request = self.client.execute(statement, params);
            pin_mut!(request);
            // The first poll encodes and queues the request, or fails.
            match future::poll_fn(|cx| Poll::Ready(request.as_mut().poll(cx))).await {
                Poll::Ready(Err(e)) => Err(e),
                Poll::Ready(Ok(n)) => Ok(Ok(n)),
                Poll::Pending => Ok(request.await),
            }
        })
    }

    /// `statement` then `simple`, sent together: one round trip. `simple`
    /// is sent only once `statement` is: when `statement` cannot even be
    /// encoded, the second result is `None` and nothing was sent.
    pub(super) fn execute_then_simple(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
        simple: &str,
    ) -> ExecutedThenSimple {
        self.runtime
            .block_on(self.execute_then_simple_async(statement, params, simple))
    }

    async fn execute_then_simple_async(
        &self,
        statement: &Statement,
        params: &[Param<'_>],
        simple: &str,
    ) -> ExecutedThenSimple {
        let first = self.client.execute(statement, params);
        pin_mut!(first);
        // The first poll encodes and queues the request, or fails.
        let early = future::poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx))).await;
        match early {
            Poll::Ready(Err(e)) => (Err(e), None),
            Poll::Ready(Ok(n)) => (Ok(n), Some(self.client.simple_query(simple).await)),
            Poll::Pending => {
                let (a, b) = future::join(first, self.client.simple_query(simple)).await;
                (a, Some(b))
            }
        }
    }
}

/// Why a connection could not be made.
pub(super) enum ConnectError {
    Runtime(std::io::Error),
    Postgres(Error),
}

impl ConnectError {
    pub(super) fn into_error(self) -> crate::domain::Error {
        match self {
            ConnectError::Runtime(e) => storage(
                StorageErrorKind::Io,
                format!("cannot start the PostgreSQL client's runtime: {e}"),
            ),
            ConnectError::Postgres(e) => map_err(e),
        }
    }
}
