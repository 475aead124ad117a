"""Signed audit checkpoints from Python: a ledger that only grew verifies; a
cut tail, another ledger, a changed byte and the wrong key do not."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest

import walletlog
from conftest import event


def test_keypairs_are_32_random_bytes_each() -> None:
    signing, verifying = walletlog.ed25519_keypair()
    assert isinstance(signing, bytes) and isinstance(verifying, bytes)
    assert len(signing) == len(verifying) == 32
    assert walletlog.ed25519_keypair()[0] != signing


def test_a_ledger_that_only_grew_extends_its_checkpoints(led: walletlog.Ledger) -> None:
    signing, verifying = walletlog.ed25519_keypair()
    empty = led.audit_checkpoint(signing)
    for i in range(1, 4):
        led.ingest(**event(i))
    cp = led.audit_checkpoint(signing)
    assert cp.startswith("walletlog-checkpoint v1\nledger ")
    assert "\nsequence 3\n" in cp
    led.ingest(**event(4))
    report = led.verify_audit(checkpoints=[empty, cp], verifying_key=verifying)
    assert report.ok and report.records_checked == 4 and report.problem is None

    # The wrong key, a changed byte, another ledger.
    _, stranger = walletlog.ed25519_keypair()
    bad = led.verify_audit(checkpoints=[cp], verifying_key=stranger)
    assert (bad.ok, bad.problem) == (False, "checkpoint_bad_signature")
    forged = cp.replace("sequence 3", "sequence 2")
    bad = led.verify_audit(checkpoints=[forged], verifying_key=verifying)
    assert bad.problem == "checkpoint_bad_signature" and bad.first_bad_sequence == 2
    with walletlog.Ledger(":memory:") as other:
        other.ingest(**event(1))
        theirs = other.audit_checkpoint(signing)
    bad = led.verify_audit(checkpoints=[theirs], verifying_key=verifying)
    assert bad.problem == "checkpoint_other_ledger"
    assert bad.reason is not None and "checkpoint 1" in bad.reason


def test_a_cut_tail_is_caught_though_the_chain_verifies(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "wallet.db"
    signing, verifying = walletlog.ed25519_keypair()
    with walletlog.Ledger(str(path)) as led:
        for i in range(1, 4):
            led.ingest(**event(i))
        cp3 = led.audit_checkpoint(signing)
        for i in range(4, 7):
            led.ingest(**event(i, wallet_id="tail"))
        cp6 = led.audit_checkpoint(signing)
        raw = sqlite3.connect(path)
        raw.executescript(
            "DELETE FROM audit WHERE sequence > 3;"
            "DELETE FROM events WHERE wallet_id = 'tail';"
            "DELETE FROM rollups WHERE wallet_id = 'tail';"
        )
        raw.close()
        assert led.verify_audit().ok, "the cut is consistent"
        report = led.verify_audit(checkpoints=[cp3, cp6], verifying_key=verifying)
        assert (report.ok, report.problem, report.first_bad_sequence) == (False, "tail_cut", 4)
        assert report.reason is not None and "checkpoint 2 (record 6" in report.reason
    # The signing key is nowhere in the file.
    assert signing not in path.read_bytes()


def test_bad_arguments_are_typed_errors(led: walletlog.Ledger) -> None:
    signing, verifying = walletlog.ed25519_keypair()
    cp = led.audit_checkpoint(signing)
    with pytest.raises(walletlog.ValidationError) as e:
        led.audit_checkpoint(signing[:31])
    assert e.value.field == "signing_key"
    with pytest.raises(walletlog.ValidationError) as e:
        led.verify_audit(checkpoints=[cp])
    assert e.value.field == "verifying_key"
    with pytest.raises(walletlog.ValidationError):
        led.verify_audit(checkpoints=cp, verifying_key=verifying)  # type: ignore[arg-type]
    with pytest.raises(walletlog.ValidationError):
        led.audit_checkpoint("not bytes")  # type: ignore[arg-type]
    with pytest.raises(walletlog.ValidationError) as e:
        led.verify_audit(checkpoints=[cp], verifying_key=b"\x00" * 3)
    assert e.value.field == "verifying_key"
