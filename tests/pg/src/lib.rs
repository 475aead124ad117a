//! A real PostgreSQL server for tests and benchmarks.
//!
//! [`server`] is the one a test uses: the server whose maintenance database
//! `WALLETLOG_TEST_PG` names (a libpq URI) when it is set, else a private
//! cluster this process starts once: Debian's binaries under
//! `/usr/lib/postgresql/*/bin`, `initdb` and `pg_ctl` run as the
//! unprivileged `postgres` user when the tests run as root (the server
//! refuses root), its data directory and Unix socket in one directory
//! under `/tmp` that user can reach, no TCP listener. A watchdog stops the
//! cluster and removes its directory when the process that started it
//! ends, however it ends: a failing or killed test run leaves no server.
//!
//! Each test takes a fresh schema of its own ([`Server::fresh_location`]),
//! so tests run in parallel without seeing each other's ledgers.
//!
//! [`Cluster`] is a private cluster its owner controls: started, crashed
//! (`pg_ctl stop -m immediate`), restarted and stopped, for the crash tests
//! and for `cargo xtask test`, which starts one for the whole run and hands
//! its URI to every suite in `WALLETLOG_TEST_PG`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable naming an existing server's maintenance database.
pub const ENV: &str = "WALLETLOG_TEST_PG";

/// The database the tests' schemas live in, created on first use.
const TEST_DATABASE: &str = "walletlog_test";

pub type Result<T> = std::result::Result<T, String>;

/// The directory holding `initdb` and `pg_ctl`: the newest of Debian's
/// `/usr/lib/postgresql/<major>/bin`, or the one `pg_config --bindir` names.
pub fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    bin.join("pg_ctl").exists().then_some(bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // PostgreSQL cuts identifiers at 63 bytes: keep names well inside.
    let prefix: String = prefix.chars().take(24).collect();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A private cluster in a directory of its own.
pub struct Cluster {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl Cluster {
    /// Creates and starts a cluster in a new directory under `/tmp`.
    pub fn start(name: &str) -> Result<Cluster> {
        let bin = bin_dir().ok_or(
            "no PostgreSQL server binaries (Debian's postgresql package: apt-get install postgresql)",
        )?;
        let dir = PathBuf::from("/tmp").join(unique(&format!("walletlog-pg-{name}")));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let as_postgres = is_root();
        let cluster = Cluster {
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            cluster.run("chown", &["postgres:postgres", cluster.dir_str()], false)?;
        }
        let data = cluster.data();
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
        )?;
        let conf = format!(
            "\nlisten_addresses = ''\nunix_socket_directories = '{}'\nport = 5432\n\
             max_connections = 400\nfsync = on\nsynchronous_commit = on\n",
            cluster.dir.display()
        );
        let conf_path = Path::new(&data).join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_path).map_err(|e| e.to_string())?;
        text.push_str(&conf);
        std::fs::write(&conf_path, text).map_err(|e| e.to_string())?;
        cluster.start_again()?;
        Ok(cluster)
    }

    fn dir_str(&self) -> &str {
        self.dir.to_str().expect("the cluster directory is UTF-8")
    }

    fn data(&self) -> String {
        format!("{}/data", self.dir.display())
    }

    /// Runs `program` (as the `postgres` user when `as_postgres`).
    fn run(&self, program: &str, args: &[&str], as_postgres: bool) -> Result<()> {
        let mut cmd = if as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} {} failed: {}{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Runs one of the server's programs as the user that owns the cluster.
    fn pg(&self, program: &str, args: &[&str]) -> Result<()> {
        let path = self.bin.join(program);
        self.run(path.to_str().expect("UTF-8 path"), args, self.as_postgres)
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&self) -> Result<()> {
        let log = format!("{}/server.log", self.dir.display());
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-l", &log, "-w", "-t", "60", "start"],
        )
    }

    /// Kills the server as a crash would: no checkpoint, no clean shutdown.
    pub fn crash(&self) -> Result<()> {
        self.pg(
            "pg_ctl",
            &["-D", &self.data(), "-w", "stop", "-m", "immediate"],
        )
    }

    /// Stops the server cleanly.
    pub fn stop(&self) -> Result<()> {
        self.pg("pg_ctl", &["-D", &self.data(), "-w", "stop", "-m", "fast"])
    }

    /// The socket directory (also the `host` of the URIs).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A libpq URI of `database` on this cluster, over its Unix socket.
    pub fn uri(&self, database: &str) -> String {
        format!(
            "postgresql://postgres@{}/{database}",
            self.dir_str().replace('/', "%2F")
        )
    }

    /// Stops the cluster and removes its directory once the process with
    /// `pid` ends, even when it is killed.
    pub fn stop_when_gone(&self, pid: u32) -> Result<()> {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!(
                "runuser -u postgres -- {} -D {} stop -m immediate",
                pg_ctl.display(),
                self.data()
            )
        } else {
            format!("{} -D {} stop -m immediate", pg_ctl.display(), self.data())
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {}",
            self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| format!("watchdog: {e}"))
    }

    /// Stops the server and removes the cluster's directory.
    pub fn destroy(self) -> Result<()> {
        let stopped = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        stopped
    }
}

/// The server the tests use.
pub struct Server {
    /// The maintenance database's URI.
    admin: String,
    /// The private cluster, when this process started one.
    _cluster: Option<Cluster>,
}

/// The server of this test process, started on first use (see the module
/// documentation). Panics, with the reason, when there is none to be had.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = match std::env::var(ENV) {
            Ok(uri) if !uri.is_empty() => Server {
                admin: uri,
                _cluster: None,
            },
            _ => {
                let cluster = Cluster::start("tests")
                    .unwrap_or_else(|e| panic!("cannot start a PostgreSQL cluster: {e}"));
                cluster
                    .stop_when_gone(std::process::id())
                    .unwrap_or_else(|e| panic!("{e}"));
                Server {
                    admin: cluster.uri("postgres"),
                    _cluster: Some(cluster),
                }
            }
        };
        server.create_test_database();
        server
    })
}

/// Connects with retries while the server starts or restarts.
pub fn connect(uri: &str) -> postgres::Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match postgres::Client::connect(uri, postgres::NoTls) {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("cannot connect to the test PostgreSQL server: {e}"),
        }
    }
}

impl Server {
    pub fn admin_uri(&self) -> &str {
        &self.admin
    }

    fn create_test_database(&self) {
        let mut admin = connect(&self.admin);
        let exists = admin
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&TEST_DATABASE],
            )
            .expect("pg_database")
            .is_some();
        if !exists {
            // Another test process may create it at the same moment.
            if let Err(e) = admin.batch_execute(&format!("CREATE DATABASE {TEST_DATABASE}")) {
                let duplicate = e.code() == Some(&postgres::error::SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION);
                assert!(duplicate, "CREATE DATABASE {TEST_DATABASE}: {e}");
            }
        }
    }

    /// The URI of `database` on this server.
    pub fn database_uri(&self, database: &str) -> String {
        with_database(&self.admin, database)
    }

    /// A new, empty schema of the test database, as a ledger location:
    /// the test database's URI with `options=-csearch_path%3D<schema>`.
    pub fn fresh_location(&self, prefix: &str) -> String {
        let schema = unique(prefix).to_ascii_lowercase();
        let uri = self.database_uri(TEST_DATABASE);
        let mut client = connect(&uri);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("CREATE SCHEMA");
        with_search_path(&uri, &schema)
    }

    /// A plain client of the test database, for what tests do behind the
    /// ledger's back (a tamperer's edits, terminating backends).
    pub fn client(&self) -> postgres::Client {
        connect(&self.database_uri(TEST_DATABASE))
    }
}

/// `uri` with its database (the URI's path) replaced by `database`.
pub fn with_database(uri: &str, database: &str) -> String {
    let (scheme, rest) = uri.split_once("://").expect("a postgresql:// URI");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
    format!("{scheme}://{authority}/{database}{query}")
}

/// `uri` selecting `schema` through the `options` parameter.
pub fn with_search_path(uri: &str, schema: &str) -> String {
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}options=-csearch_path%3D{schema}")
}
