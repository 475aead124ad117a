"""What is PostgreSQL's own: the location, the pool options, an unreachable server.

Everything else runs on PostgreSQL through the `db` fixture of conftest.
"""

from __future__ import annotations

import pytest

import walletlog
from conftest import event, pg_location


def test_a_postgresql_location_and_its_pool_options() -> None:
    location = pg_location("opts")
    with walletlog.Ledger(location, pool_size=2, pool_timeout=1.5) as led:
        led.ingest(**event())
        assert led.ingest(**event()).duplicate
    with walletlog.Ledger(location, durability="normal") as again:
        assert len(again.changes_since(0, 10)) == 1
        assert again.verify_audit().ok
    with pytest.raises(walletlog.ValidationError) as refused:
        walletlog.Ledger(location, pool_size=0)
    assert refused.value.field == "pool_size"


def test_an_unreachable_server_is_unavailable_and_no_password_is_shown() -> None:
    # Nothing listens on port 1: the connection is refused at once.
    with pytest.raises(walletlog.StorageError) as refused:
        walletlog.Ledger("postgresql://app:hunter2@127.0.0.1:1/ledger")
    assert refused.value.code == "unavailable"
    assert "hunter2" not in str(refused.value)
    assert "app:***@127.0.0.1:1" in str(refused.value)
