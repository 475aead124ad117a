//! SQLite's online backup, as the port's optional [`Backup`] capability.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::error::{map_err, open_error, storage};
use super::SqliteStorage;
use crate::domain::{Result, StorageErrorKind, ValidationError};
use crate::ports::Backup;

impl Backup for SqliteStorage {
    /// In one step, so the copy is one snapshot: it reads inside one read
    /// transaction (WAL lets writers go on) and writes a private partial
    /// file next to `dest`, fsynced, then hard-linked to `dest`: the link
    /// fails if `dest` exists, so a file that appeared meanwhile is never
    /// overwritten, and `dest` only ever appears whole.
    fn backup_to(&self, dest: &Path) -> Result<()> {
        let exists = || {
            ValidationError::new(
                "destination",
                format!(
                    "{} already exists; a backup never overwrites a file",
                    dest.display()
                ),
            )
        };
        if dest.exists() {
            return Err(exists().into());
        }
        let mut partial = dest.as_os_str().to_owned();
        partial.push(format!(
            ".{}-{}.partial",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let partial = PathBuf::from(partial);
        let io = |e: std::io::Error| {
            storage(
                StorageErrorKind::Io,
                format!("cannot finish the backup {}: {e}", dest.display()),
            )
        };
        let result = self.copy_to(&partial).and_then(|()| {
            std::fs::File::open(&partial)
                .and_then(|f| f.sync_all())
                .map_err(io)?;
            match std::fs::hard_link(&partial, dest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(exists().into())
                }
                // A file system without hard links: create `dest` exclusively
                // (still never over an existing file) and copy into it.
                Err(_) => copy_exclusive(&partial, dest).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        exists().into()
                    } else {
                        io(e)
                    }
                })?,
            }
            if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io)?;
            }
            Ok(())
        });
        let _ = std::fs::remove_file(&partial);
        result
    }
}

/// Copies `from` into a new file `to`, refusing an existing one; fsynced.
fn copy_exclusive(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)?;
    let copied =
        std::io::copy(&mut std::fs::File::open(from)?, &mut target).and_then(|_| target.sync_all());
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

impl SqliteStorage {
    fn copy_to(&self, partial: &Path) -> Result<()> {
        let source = self.take_reader()?;
        let mut copy = Connection::open(partial).map_err(|e| open_error(partial, e))?;
        let deadline = Instant::now() + self.config.busy_timeout;
        let result = (|| {
            let backup = rusqlite::backup::Backup::new(&source, &mut copy).map_err(map_err)?;
            loop {
                // -1: every page in one step, one read transaction.
                match backup.step(-1).map_err(map_err)? {
                    rusqlite::backup::StepResult::Done => return Ok(()),
                    _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
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
