//! An optional capability of a storage engine: a consistent copy of the
//! whole store, taken while writers keep working.

use std::path::Path;

use crate::domain::Result;

pub trait Backup {
    /// Writes a consistent copy of the whole store to a new file at `dest`.
    /// An existing `dest` is refused, atomically: a file that appears there
    /// meanwhile is never overwritten. The file appears only once complete.
    fn backup_to(&self, dest: &Path) -> Result<()>;
}
