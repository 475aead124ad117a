//! The PostgreSQL server of a test or benchmark run.
//!
//! `WALLETLOG_TEST_PG`, when set, names an existing server's maintenance
//! database and is used as it is. Otherwise Debian's `postgresql` package is
//! installed if missing, and a private cluster is started for the run (see
//! `walletlog-testpg`): every suite of the run (Rust, C, Python) reaches it
//! through `WALLETLOG_TEST_PG`, and it is stopped when the run ends, also
//! when tests fail or the run is killed.

use anyhow::{anyhow, Result};
use walletlog_testpg::{bin_dir, Cluster, ENV};

/// The run's server; a private cluster is stopped when this is dropped.
pub(crate) struct RunServer {
    cluster: Option<Cluster>,
}

impl Drop for RunServer {
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            if let Err(e) = cluster.destroy() {
                eprintln!("xtask: stopping the PostgreSQL cluster: {e}");
            }
        }
    }
}

/// Sets `WALLETLOG_TEST_PG` for this process and its children.
pub(crate) fn run_server() -> Result<RunServer> {
    if std::env::var(ENV).is_ok_and(|v| !v.is_empty()) {
        eprintln!("xtask: PostgreSQL tests use the server {ENV} names");
        return Ok(RunServer { cluster: None });
    }
    if bin_dir().is_none() {
        crate::apt_install(
            &["postgresql"],
            "the PostgreSQL server the tests run against",
        )?;
    }
    let cluster = Cluster::start("run").map_err(|e| anyhow!("{e}"))?;
    cluster
        .stop_when_gone(std::process::id())
        .map_err(|e| anyhow!("{e}"))?;
    let uri = cluster.uri("postgres");
    eprintln!("xtask: PostgreSQL cluster for this run at {uri}");
    std::env::set_var(ENV, &uri);
    // The database the suites' schemas live in.
    walletlog_testpg::server();
    Ok(RunServer {
        cluster: Some(cluster),
    })
}
