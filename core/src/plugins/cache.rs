//! The on-disk cache of compiled plugins.
//!
//! A file holds `sha256(artifact) || artifact`, where the artifact is what
//! `Component::serialize` wrote in this host. Its name is derived from the
//! component's content hash, the wasmtime major version and the engine's
//! compatibility hash (its settings), so a changed plugin, wasmtime or
//! setting never finds a stale artifact. A file that fails its checksum, or
//! that wasmtime refuses, is ignored and compiled again.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// Bumped when this file's format changes.
const FORMAT: &[u8] = b"walletlog.plugin-cache.v1;wasmtime-48";

pub struct DiskCache {
    dir: PathBuf,
    engine_key: [u8; 32],
}

/// Feeds `Hash` output into SHA-256, for a key that is stable across runs.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

impl DiskCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = ShaHasher(Sha256::new());
        h.write(FORMAT);
        engine.precompile_compatibility_hash().hash(&mut h);
        DiskCache {
            dir,
            engine_key: h.0.finalize().into(),
        }
    }

    fn path(&self, content_hash: &[u8; 32]) -> PathBuf {
        let mut h = Sha256::new();
        h.update(self.engine_key);
        h.update(content_hash);
        self.dir
            .join(format!("{}.cwasm", crate::encoding::hex(&h.finalize())))
    }

    pub fn load(&self, engine: &Engine, content_hash: &[u8; 32]) -> Option<Component> {
        let file = std::fs::read(self.path(content_hash)).ok()?;
        if file.len() < 32 {
            return None;
        }
        let (sum, artifact) = file.split_at(32);
        if Sha256::digest(artifact).as_slice() != sum {
            tracing::warn!(
                target: "walletlog::plugins",
                "ignoring a damaged compiled plugin in the cache"
            );
            return None;
        }
        // SAFETY: `deserialize` trusts its input to be wasmtime's own
        // output. This artifact was written by `store` below, in this
        // host's own cache directory, under a name that binds the plugin's
        // content hash and this engine's settings, and its checksum has
        // just been verified. wasmtime also checks version and settings.
        unsafe { Component::deserialize(engine, artifact) }.ok()
    }

    pub fn store(&self, content_hash: &[u8; 32], component: &Component) {
        let Ok(artifact) = component.serialize() else {
            return;
        };
        let mut file = Sha256::digest(&artifact).to_vec();
        file.extend_from_slice(&artifact);
        let path = self.path(content_hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|_| std::fs::write(&tmp, &file))
            .and_then(|_| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(
                target: "walletlog::plugins",
                "cannot cache a compiled plugin in {}: {e}",
                self.dir.display()
            );
        }
    }
}
