//! Signed audit checkpoints: a small text document, held outside the
//! ledger, that pins the audit chain's head at one sequence. A ledger that
//! only grew since still holds that record with that hash; a cut tail, a
//! rollback to an older copy or another ledger does not. The format is in
//! `docs/audit.md` ("Checkpoints") and stable across versions:
//!
//! ```text
//! walletlog-checkpoint v1
//! ledger 0191f0c2-7a3e-7000-8000-000000000001
//! sequence 42
//! head 3f5a0b...(64 hex digits)
//! time 2026-12-02T00:10:00.123456Z
//! signature 9c1e...(128 hex digits: Ed25519 over every line above, with its newline)
//! ```

use std::fmt;

use ed25519_dalek::Signer as _;

use super::error::ValidationError;
use super::values::Timestamp;
use crate::encoding::{hex, quoted, unhex};

/// The first line of every checkpoint of this format.
pub const CHECKPOINT_MAGIC: &str = "walletlog-checkpoint v1";

/// The longest checkpoint text read, in bytes: a real one is about 280.
pub const CHECKPOINT_BYTES_MAX: usize = 1024;

/// A ledger's identity: a random id created with the ledger, so that one
/// ledger's checkpoint never verifies another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LedgerId(uuid::Uuid);

impl LedgerId {
    pub fn generate() -> Self {
        LedgerId(uuid::Uuid::new_v4())
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        LedgerId(uuid::Uuid::from_bytes(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// The Ed25519 key that signs checkpoints: 32 secret bytes. Never printed,
/// logged or stored by walletlog.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

/// The public half, that verifies them: 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl SigningKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("the operating system gives random bytes");
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ValidationError> {
        let seed: [u8; 32] = bytes.try_into().map_err(|_| {
            ValidationError::new(
                "signing_key",
                format!("is {} bytes; an Ed25519 signing key is 32", bytes.len()),
            )
        })?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// From 64 hex digits, as a key file holds it.
    pub fn from_hex(text: &str) -> Result<Self, ValidationError> {
        let bytes = unhex(text.trim())
            .ok_or_else(|| ValidationError::new("signing_key", "is not 64 hex digits"))?;
        Self::from_bytes(&bytes)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl VerifyingKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ValidationError> {
        let b: [u8; 32] = bytes.try_into().map_err(|_| {
            ValidationError::new(
                "verifying_key",
                format!("is {} bytes; an Ed25519 public key is 32", bytes.len()),
            )
        })?;
        ed25519_dalek::VerifyingKey::from_bytes(&b)
            .ok()
            .filter(|k| !k.is_weak())
            .map(VerifyingKey)
            .ok_or_else(|| {
                ValidationError::new("verifying_key", "is not a valid Ed25519 public key")
            })
    }

    /// From 64 hex digits, as a key file holds it.
    pub fn from_hex(text: &str) -> Result<Self, ValidationError> {
        let bytes = unhex(text.trim())
            .ok_or_else(|| ValidationError::new("verifying_key", "is not 64 hex digits"))?;
        Self::from_bytes(&bytes)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", hex(&self.to_bytes()))
    }
}

/// What a checkpoint states: this ledger's audit record `sequence` had
/// hash `head` at `time` (sequence 0 and the genesis hash: an empty trail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub ledger_id: LedgerId,
    pub sequence: u64,
    pub head: [u8; 32],
    pub time: Timestamp,
}

/// A checkpoint as read from its text, with the signature it carries (not
/// yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The signed lines, each with its newline.
    fn body(&self) -> String {
        format!(
            "{CHECKPOINT_MAGIC}\nledger {}\nsequence {}\nhead {}\ntime {}\n",
            self.ledger_id,
            self.sequence,
            hex(&self.head),
            self.time
        )
    }

    /// The whole document, signed with `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let signature = key.0.sign(body.as_bytes());
        format!("{body}signature {}\n", hex(&signature.to_bytes()))
    }
}

impl SignedCheckpoint {
    /// Reads a checkpoint document, strictly: the six lines in order, each
    /// ending with a newline (the last one's may be missing), nothing else.
    pub fn parse(text: &str) -> Result<SignedCheckpoint, ValidationError> {
        let bad = |why: String| ValidationError::new("checkpoint", why);
        if text.len() > CHECKPOINT_BYTES_MAX {
            return Err(bad(format!(
                "is {} bytes; a checkpoint is at most {CHECKPOINT_BYTES_MAX}",
                text.len()
            )));
        }
        let text = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() != 6 {
            return Err(bad(format!(
                "has {} lines; a checkpoint has 6 ({CHECKPOINT_MAGIC:?}, ledger, sequence, \
                 head, time, signature)",
                lines.len()
            )));
        }
        if lines[0] != CHECKPOINT_MAGIC {
            return Err(bad(format!(
                "does not start with {CHECKPOINT_MAGIC:?}: {}",
                quoted(lines[0])
            )));
        }
        let field = |i: usize, name: &str| -> Result<&str, ValidationError> {
            lines[i]
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or_else(|| {
                    bad(format!(
                        "line {} is not `{name} ...`: {}",
                        i + 1,
                        quoted(lines[i])
                    ))
                })
        };
        let ledger = field(1, "ledger")?;
        let ledger_id = uuid::Uuid::try_parse(ledger)
            .ok()
            .filter(|u| u.hyphenated().to_string() == ledger)
            .map(LedgerId)
            .ok_or_else(|| bad(format!("ledger {} is not a UUID", quoted(ledger))))?;
        let sequence = field(2, "sequence")?;
        let sequence: u64 = sequence
            .parse()
            .ok()
            .filter(|n: &u64| n.to_string() == sequence)
            .ok_or_else(|| bad(format!("sequence {} is not a number", quoted(sequence))))?;
        let hex_exact = |text: &str, len: usize, what: &str| -> Result<Vec<u8>, ValidationError> {
            unhex(text)
                .filter(|b| b.len() == len && hex(b) == text)
                .ok_or_else(|| bad(format!("{what} is not {} lower-case hex digits", len * 2)))
        };
        let head: [u8; 32] = hex_exact(field(3, "head")?, 32, "head")?
            .try_into()
            .expect("32 bytes");
        let time_text = field(4, "time")?;
        let time = Timestamp::parse_rfc3339("checkpoint", time_text)
            .ok()
            .filter(|t| t.to_string() == time_text)
            .ok_or_else(|| bad(format!("time {} is not RFC 3339 in UTC", quoted(time_text))))?;
        let signature: [u8; 64] = hex_exact(field(5, "signature")?, 64, "signature")?
            .try_into()
            .expect("64 bytes");
        Ok(SignedCheckpoint {
            checkpoint: Checkpoint {
                ledger_id,
                sequence,
                head,
                time,
            },
            signature,
        })
    }

    /// Whether `key` signed exactly this checkpoint.
    pub fn signed_by(&self, key: &VerifyingKey) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.0
            .verify_strict(self.checkpoint.body().as_bytes(), &signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            ledger_id: LedgerId::generate(),
            sequence: 42,
            head: [7; 32],
            time: Timestamp::parse_rfc3339("t", "2026-12-02T00:10:00.123456Z").unwrap(),
        }
    }

    #[test]
    fn a_signed_checkpoint_reads_back_and_verifies_with_its_key_only() {
        let key = SigningKey::generate();
        let c = sample();
        let text = c.sign(&key);
        assert_eq!(text.lines().count(), 6);
        let read = SignedCheckpoint::parse(&text).unwrap();
        assert_eq!(read.checkpoint, c);
        assert!(read.signed_by(&key.verifying_key()));
        assert!(!read.signed_by(&SigningKey::generate().verifying_key()));
        assert!(SignedCheckpoint::parse(text.trim_end()).is_ok());
    }

    #[test]
    fn every_changed_byte_is_refused_or_fails_the_signature() {
        let key = SigningKey::generate();
        let text = sample().sign(&key);
        for i in 0..text.len() {
            for bit in 0..8 {
                let mut bytes = text.clone().into_bytes();
                bytes[i] ^= 1 << bit;
                let Ok(flipped) = String::from_utf8(bytes) else {
                    continue;
                };
                if let Ok(c) = SignedCheckpoint::parse(&flipped) {
                    // Only the optional final newline may change without
                    // changing what is signed.
                    assert!(
                        !c.signed_by(&key.verifying_key()) || flipped.trim_end() == text.trim_end(),
                        "byte {i} bit {bit}"
                    );
                }
            }
        }
    }

    #[test]
    fn keys_are_32_bytes_and_never_printed() {
        let key = SigningKey::generate();
        assert_eq!(format!("{key:?}"), "SigningKey(<redacted>)");
        assert!(SigningKey::from_bytes(&[1; 31]).is_err());
        let again = SigningKey::from_hex(&hex(&key.to_bytes())).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        assert!(VerifyingKey::from_hex("00").is_err());
    }
}
