//! Opening: read the URI, connect, name the ledger's lock, migrate.

use std::time::Duration;

use tokio_postgres::Config;

use super::client::{Client, Param};

use super::error::{kind_of, map_err, storage};
use super::pool::Conn;
use super::schema;
use crate::config::{Durability, PostgresConfig};
use crate::domain::{Error, Result, StorageError, StorageErrorKind, ValidationError};

/// Idle time before the first TCP keepalive probe, unless the location says.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(30);
/// How long a transaction may sit idle before the server ends it.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(60);

/// The libpq URI as a client configuration, with walletlog's defaults for
/// what it leaves unsaid (`connect_timeout`, `application_name`).
pub(super) fn parse(uri: &str, shown: &str) -> Result<Config> {
    let mut config: Config = uri.parse().map_err(|e: tokio_postgres::Error| {
        Error::Validation(ValidationError::new(
            "location",
            format!("{shown} is not a PostgreSQL URI walletlog can use: {e}"),
        ))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(PostgresConfig::CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("walletlog");
    }
    // Probe an idle connection after 30 s rather than the system's two
    // hours, so this side notices a vanished server sooner. (The server
    // ends a transaction left idle, and frees the lock, after
    // IDLE_IN_TRANSACTION.)
    if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
        config.keepalives_idle(KEEPALIVES_IDLE);
    }
    Ok(config)
}

/// The size of the one value a new connection has its server process
/// allocate and free, so that the process keeps the memory of walletlog's
/// write statements (see [`connect`]).
const ALLOCATOR_WARM_UP_BYTES: usize = 4 << 20;

/// A new connection, set up for this ledger: durability, how long a writer
/// waits for the ledger's lock, how long a transaction may sit idle
/// (holding the lock) before the server ends it, and its server process's
/// allocator warmed up.
///
/// The warm-up: walletlog's write statement needs about 600 KB of executor
/// memory on the server, which glibc's `malloc` (the allocator of
/// PostgreSQL on Linux) takes from the top of its heap and gives back to the
/// kernel when the statement ends, since that is more than its 128 KB trim
/// threshold. Every write then faulted in about 150 fresh pages: the server
/// process spent about 550 us of CPU per single ingest with them, 450 us
/// without (`perf`, on the benchmark's server).
/// glibc raises its thresholds when a block it had to map on its own is
/// freed: the mmap threshold to that block's size and the trim threshold to
/// twice it. One 4 MiB value, allocated and freed once per connection,
/// therefore keeps the process's heap. The cost: a few milliseconds once
/// per connection, and a server process that keeps the memory of its
/// largest statement (bounded by 8 MiB of free heap). With another
/// allocator, or thresholds set in the server's environment
/// (`MALLOC_TRIM_THRESHOLD_`), it changes nothing.
pub(super) fn connect(config: &Config, pg: &PostgresConfig, shown: &str) -> Result<Conn> {
    let durability = pg.durability;
    let client = Client::connect(config).map_err(|e| {
        let Error::Storage(s) = e.into_error() else {
            unreachable!("connect errors are storage errors")
        };
        Error::Storage(StorageError::new(
            s.kind,
            format!("cannot connect to {shown}: {}", s.message),
        ))
    })?;
    let conn = Conn::new(client);
    let sync = match durability {
        Durability::Full => "on",
        Durability::Normal => "off",
    };
    conn.client
        .batch_execute(&format!(
            "SET synchronous_commit = {sync}; SET lock_timeout = {}; \
             SET default_transaction_isolation = 'read committed'; \
             SET idle_in_transaction_session_timeout = {}",
            pg.pool_timeout.as_millis().max(1),
            IDLE_IN_TRANSACTION.as_millis(),
        ))
        .map_err(map_err)?;
    // Only an optimisation: a server that refuses it (a tiny
    // statement_timeout, a memory limit) still gets a working connection.
    let _ = conn.client.batch_execute(&format!(
        "SELECT octet_length(repeat(repeat('x', 4096), {}))",
        ALLOCATOR_WARM_UP_BYTES / 4096
    ));
    Ok(conn)
}

/// The schema the connection's `search_path` selects, created when it
/// names one that does not exist yet (a new tenant), and the key of the
/// ledger's advisory lock, derived from it: one ledger per schema, so two
/// tenants' writers never wait for each other (but for a hash collision).
pub(super) fn identify(conn: &mut Conn, shown: &str, create: bool) -> Result<(String, i64)> {
    let current = |conn: &mut Conn| -> Result<(Option<String>, i64)> {
        let row = one_row(
            conn,
            "SELECT current_schema(), \
                    hashtextextended('walletlog ledger ' || coalesce(current_schema(), ''), 0)",
            &[],
        )?;
        Ok((row.get(0), row.get(1)))
    };
    // The ledger lives in the first schema the search_path names (`$user`
    // when a schema of that name exists), never in a later one that
    // happens to exist: `tenant_x,public` with a new tenant must not land
    // in public.
    let first = first_search_path_schema(conn)?;
    let (schema, key) = current(conn)?;
    let Some(first) = first else {
        return match schema {
            Some(schema) => Ok((schema, key)),
            None => Err(storage(
                StorageErrorKind::Other,
                format!(
                    "{shown}: the search_path names no schema to hold the ledger; \
                     give one with options=-csearch_path%3D<schema>"
                ),
            )),
        };
    };
    if schema.as_deref() == Some(first.as_str()) {
        return Ok((first, key));
    }
    if schema_exists(conn, &first)? {
        // Another process may have created it since this one looked: then
        // the search_path selects it now.
        if let (Some(schema), key) = current(conn)? {
            if schema == first {
                return Ok((schema, key));
            }
        }
        return Err(storage(
            StorageErrorKind::Io,
            format!(
                "{shown}: schema {first} exists but this role cannot use it \
                 (GRANT USAGE ON SCHEMA {first} TO ...)"
            ),
        ));
    }
    if !create {
        return Err(no_ledger(shown, &first));
    }
    let create = format!(
        "CREATE SCHEMA IF NOT EXISTS \"{}\"",
        first.replace('"', "\"\"")
    );
    if let Err(e) = conn.client.batch_execute(&create) {
        // Two processes creating the same new schema at once: one of them
        // sees the other's. Anything else (no CREATE privilege) is the error.
        if e.code() != Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
            return Err(storage(
                kind_of(&e),
                format!(
                    "{shown}: schema {first} does not exist and cannot be created ({}); \
                     create it (CREATE SCHEMA {first}) or grant CREATE on the database",
                    map_err(e)
                ),
            ));
        }
    }
    match current(conn)? {
        (Some(schema), key) if schema == first => Ok((schema, key)),
        _ => Err(storage(
            StorageErrorKind::Other,
            format!("{shown}: schema {first} was created but the search_path does not select it"),
        )),
    }
}

fn schema_exists(conn: &mut Conn, name: &str) -> Result<bool> {
    Ok(one_row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
        &[&name],
    )?
    .get(0))
}

/// The first schema the `search_path` setting names: `$user` as the
/// current role's name when such a schema exists (and skipped when not, as
/// PostgreSQL does), `pg_`-schemas skipped, quoted names unquoted.
fn first_search_path_schema(conn: &mut Conn) -> Result<Option<String>> {
    let row = one_row(
        conn,
        "SELECT current_setting('search_path'), current_user::text",
        &[],
    )?;
    let (path, user): (String, String) = (row.get(0), row.get(1));
    for entry in split_search_path(&path) {
        let name = if entry == "$user" {
            if !schema_exists(conn, &user)? {
                continue;
            }
            user.clone()
        } else {
            entry
        };
        if !name.is_empty() && !name.starts_with("pg_") {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The entries of a `search_path` value: commas outside double quotes
/// separate them; a quoted entry keeps its case and its `""` escapes
/// become `"`; an unquoted one is folded to lower case.
fn split_search_path(path: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut chars = path.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut entry = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        entry.push('"');
                    } else {
                        break;
                    }
                } else {
                    entry.push(c);
                }
            }
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
                entry.push(c);
            }
            entry = entry.trim().to_ascii_lowercase();
        }
        entries.push(entry);
        if chars.peek().is_none() {
            break;
        }
    }
    entries
}

/// The one row `sql` returns.
fn one_row(conn: &mut Conn, sql: &str, params: &[Param<'_>]) -> Result<tokio_postgres::Row> {
    let statement = conn.statement(sql)?;
    let mut rows = conn.client.query(&statement, params).map_err(map_err)?;
    if rows.len() != 1 {
        return Err(storage(
            StorageErrorKind::Other,
            format!("{sql}: {} rows where one belongs", rows.len()),
        ));
    }
    Ok(rows.remove(0))
}

/// Brings the schema up to date, under the ledger's lock, in one
/// transaction. A schema from a newer walletlog, or one holding tables
/// that are not walletlog's, is refused before anything changes.
/// A ledger that must exist and does not: the schema, or its tables.
fn no_ledger(shown: &str, schema: &str) -> Error {
    Error::NotFound {
        what: format!("ledger at {shown} (schema {schema} holds none; nothing was created)"),
    }
}

pub(super) fn migrate(
    conn: &mut Conn,
    lock_key: i64,
    schema_name: &str,
    shown: &str,
    create: bool,
) -> Result<()> {
    // READ COMMITTED whatever the server's default: after the lock, the
    // version read must be the last opener's.
    conn.client
        .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        .map_err(map_err)?;
    let result = migrate_in_transaction(conn, lock_key, schema_name, shown, create);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = conn.client.batch_execute(end).map_err(map_err);
    result.and(ended)
}

fn migrate_in_transaction(
    conn: &mut Conn,
    lock_key: i64,
    schema_name: &str,
    shown: &str,
    create: bool,
) -> Result<()> {
    one_row(conn, "SELECT pg_advisory_xact_lock($1)::text", &[&lock_key])?;
    let row = one_row(
        conn,
        "SELECT to_regclass(quote_ident(current_schema()) || '.walletlog_schema') IS NOT NULL, \
                to_regclass(quote_ident(current_schema()) || '.events') IS NOT NULL",
        &[],
    )?;
    let (versioned, has_events): (bool, bool) = (row.get(0), row.get(1));
    if !versioned && has_events {
        return Err(storage(
            StorageErrorKind::Corrupt,
            format!(
                "{shown}: schema {schema_name} has an events table but is not a walletlog \
                 ledger (no walletlog_schema table); use another schema or database"
            ),
        ));
    }
    if !versioned && !create {
        return Err(no_ledger(shown, schema_name));
    }
    if !versioned {
        // Only when missing: an application role without CREATE opens a
        // ledger that is up to date.
        conn.client
            .batch_execute(
                "CREATE TABLE walletlog_schema (
                     version    integer     PRIMARY KEY,
                     walletlog  text        NOT NULL,
                     applied_at timestamptz NOT NULL DEFAULT now()
                 )",
            )
            .map_err(map_err)?;
    }
    let version: i32 = one_row(
        conn,
        "SELECT coalesce(max(version), 0) FROM walletlog_schema",
        &[],
    )?
    .get(0);
    let version = i64::from(version);
    let latest = schema::latest_version();
    if version > latest {
        return Err(storage(
            StorageErrorKind::SchemaTooNew,
            format!(
                "{shown}: schema {schema_name} has version {version}, written by a newer \
                 walletlog; walletlog {} reads versions up to {latest}. Upgrade walletlog to open it",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let number = i as i32 + 1;
        conn.client.batch_execute(sql).map_err(|e| {
            storage(
                StorageErrorKind::Other,
                format!("migration {number} failed: {}", map_err(e)),
            )
        })?;
        let insert =
            conn.statement("INSERT INTO walletlog_schema (version, walletlog) VALUES ($1, $2)")?;
        conn.client
            .execute(&insert, &[&number, &env!("CARGO_PKG_VERSION")])
            .map_err(map_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_search_path;

    #[test]
    fn search_paths_split_like_postgresql_reads_them() {
        assert_eq!(split_search_path("\"$user\", public"), ["$user", "public"]);
        assert_eq!(split_search_path("Tenant_A,public"), ["tenant_a", "public"]);
        assert_eq!(
            split_search_path("\"a,b\", \"Say \"\"hi\"\"\""),
            ["a,b", "Say \"hi\""]
        );
        assert_eq!(split_search_path(""), [""]);
    }
}
