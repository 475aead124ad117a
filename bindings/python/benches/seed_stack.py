"""For scale: the seed's stack on the same PostgreSQL as `cargo xtask bench`.

The seed ingested with Python and the SQLAlchemy ORM, one commit per
event. This is a stand-in written here in that style (the seed's own code
is not in this repository): an ORM model with the three unique keys, a
dedupe query on the provider's event id, an insert, a commit. It measures single events per
second and merges `pg_seed_stack_single_eps` into the figures.

Usage: python seed_stack.py FIGURES_JSON ADMIN_URI  (prints the merged JSON object)
Needs `sqlalchemy` and `psycopg` (installed by `cargo xtask bench`).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import BigInteger, Numeric, String, UniqueConstraint, create_engine, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

EVENTS = 1_000


class Base(DeclarativeBase):
    pass


class WalletTransactionEvent(Base):
    __tablename__ = "wallet_transaction_events"
    __table_args__ = (UniqueConstraint("provider", "provider_event_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    wallet_id: Mapped[str] = mapped_column(String(128), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal] = mapped_column(Numeric(38, 18))
    currency: Mapped[str] = mapped_column(String(3))
    provider_event_id: Mapped[str | None] = mapped_column(String(255))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]


def sqlalchemy_url(admin: str) -> str:
    """The test database of `admin` (a libpq URI, host maybe a socket dir)."""
    parts = urllib.parse.urlsplit(admin)
    user, _, host = parts.netloc.rpartition("@")
    host = urllib.parse.unquote(host)
    if host.startswith("/"):
        return f"postgresql+psycopg://{user}@/walletlog_test?host={host}"
    return f"postgresql+psycopg://{parts.netloc}/walletlog_test"


def main() -> None:
    figures = json.loads(Path(sys.argv[1]).read_text())
    schema = f"seed_stack_{os.getpid()}"
    engine = create_engine(
        sqlalchemy_url(sys.argv[2]),
        connect_args={"options": f"-csearch_path={schema}"},
    )
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    Base.metadata.create_all(engine)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    start = time.perf_counter()
    with Session(engine) as session:
        for i in range(EVENTS):
            pei = f"evt_{i}"
            existing = session.scalars(
                select(WalletTransactionEvent).where(
                    WalletTransactionEvent.provider == "stripe",
                    WalletTransactionEvent.provider_event_id == pei,
                )
            ).first()
            if existing is not None:
                continue
            session.add(
                WalletTransactionEvent(
                    event_id=str(uuid.uuid4()),
                    wallet_id=f"wallet_{i % 100}",
                    provider="stripe",
                    event_type="deposit",
                    amount=Decimal(f"{i % 1000 + 1}.{i % 100:02}"),
                    currency="USD",
                    provider_event_id=pei,
                    occurred_at=t0,
                    created_at=datetime.now(timezone.utc),
                )
            )
            session.commit()
    figures["pg_seed_stack_single_eps"] = round(EVENTS / (time.perf_counter() - start))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    if "pg_ingest_single_eps" in figures:
        ratio = figures["pg_ingest_single_eps"] / figures["pg_seed_stack_single_eps"]
        figures["ratio_pg_ingest_single_vs_seed_stack"] = round(ratio, 2)
    print(json.dumps(figures, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
