//! Embedded, versioned, forward-only migrations.
//!
//! The schema version lives in `PRAGMA user_version`; `PRAGMA application_id`
//! marks the file as walletlog's. Migration N takes a file from version N-1
//! to N. Never edit a released migration: add the next one.

/// `WLOG` in ASCII.
pub const APPLICATION_ID: i32 = 0x574C_4F47;

/// The migrations, in order. The schema version is the number applied.
pub const MIGRATIONS: &[&str] = &[
    // 1: events, audit trail, balance rollups, settings.
    r#"
    CREATE TABLE events (
        sequence          INTEGER PRIMARY KEY,
        event_id          BLOB    NOT NULL UNIQUE CHECK (length(event_id) = 16),
        wallet_id         TEXT    NOT NULL,
        provider          TEXT    NOT NULL,
        event_type        INTEGER NOT NULL CHECK (event_type BETWEEN 0 AND 7),
        amount            TEXT    NOT NULL,
        currency          TEXT    NOT NULL,
        provider_event_id TEXT,
        idempotency_key   TEXT,
        metadata          TEXT    NOT NULL,
        occurred_at       INTEGER NOT NULL,
        created_at        INTEGER NOT NULL
    );
    -- The last line of defence behind the dedupe check.
    CREATE UNIQUE INDEX events_provider_event ON events (provider, provider_event_id)
        WHERE provider_event_id IS NOT NULL;
    CREATE UNIQUE INDEX events_idempotency_key ON events (idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    -- History pages and as-of sums; the rowid (sequence) breaks ties.
    CREATE INDEX events_wallet_time ON events (wallet_id, occurred_at);

    CREATE TABLE audit (
        sequence       INTEGER PRIMARY KEY,
        recorded_at    INTEGER NOT NULL,
        action         INTEGER NOT NULL,
        event_id       BLOB    NOT NULL,
        event_sequence INTEGER NOT NULL,
        matched_on     INTEGER,
        actor          TEXT    NOT NULL,
        fingerprint    BLOB    NOT NULL,
        body_sha256    BLOB,
        prev_hash      BLOB    NOT NULL,
        hash           BLOB    NOT NULL
    );

    -- Balance rollups per wallet, currency and hour bucket (by occurred_at),
    -- plus one all-time row per wallet and currency whose bucket is
    -- 9223372036854775807 (ALL_TIME_BUCKET). The current balance reads the
    -- all-time row: no scan. A past balance sums the buckets before its hour.
    -- The all-time row sorts right after the wallet's latest bucket, so
    -- both usually share a page.
    CREATE TABLE rollups (
        wallet_id        TEXT    NOT NULL,
        bucket           INTEGER NOT NULL,
        currency         TEXT    NOT NULL,
        available        TEXT    NOT NULL,
        held             TEXT    NOT NULL,
        event_count      INTEGER NOT NULL,
        last_occurred_at INTEGER,
        PRIMARY KEY (wallet_id, bucket, currency)
    ) WITHOUT ROWID;

    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 2: the webhook inbox; audit records that name their delivery;
    // events whose time was estimated (plugin contract 1.1).
    r#"
    ALTER TABLE audit ADD COLUMN delivery_id BLOB
        CHECK (delivery_id IS NULL OR length(delivery_id) = 16);
    ALTER TABLE events ADD COLUMN occurred_at_estimated INTEGER NOT NULL DEFAULT 0
        CHECK (occurred_at_estimated IN (0, 1));

    -- One row per body of one provider; its attempts (receipts and
    -- replays) as JSON text, its latest verdict and attempt time as columns
    -- for listings and retention.
    CREATE TABLE deliveries (
        sequence        INTEGER PRIMARY KEY,
        delivery_id     BLOB    NOT NULL UNIQUE CHECK (length(delivery_id) = 16),
        provider        TEXT    NOT NULL,
        received_at     INTEGER NOT NULL,
        url             TEXT,
        headers         TEXT    NOT NULL,
        body_sha256     BLOB    NOT NULL CHECK (length(body_sha256) = 32),
        body_bytes      INTEGER NOT NULL,
        verdict         INTEGER NOT NULL,
        last_attempt_at INTEGER NOT NULL,
        attempt_count   INTEGER NOT NULL,
        attempts        TEXT    NOT NULL,
        -- Last: reading the other columns never walks a large body's pages.
        body            BLOB,
        UNIQUE (provider, body_sha256)
    );
    CREATE INDEX deliveries_received ON deliveries (received_at, sequence);
    -- Dead letters by provider and verdict: only what is neither ingested
    -- (1) nor ignored (2), so that a delivery that went in touches one
    -- index fewer. Listings of settled deliveries walk deliveries_received.
    CREATE INDEX deliveries_dead ON deliveries (verdict, provider, received_at, sequence)
        WHERE verdict > 2;
    "#,
    // 3: a delivery's id is derived from its provider and body
    // (`DeliveryId::for_body`), so the id's unique index also finds a
    // delivery by its body, and the provider-and-body index holds only the
    // deliveries whose ids are not derived (those stored before): a
    // delivery touches one index fewer. SQLite cannot drop a table's
    // UNIQUE constraint, so the table is rebuilt, its rows kept as they are.
    r#"
    CREATE TABLE deliveries_3 (
        sequence        INTEGER PRIMARY KEY,
        delivery_id     BLOB    NOT NULL UNIQUE CHECK (length(delivery_id) = 16),
        provider        TEXT    NOT NULL,
        received_at     INTEGER NOT NULL,
        url             TEXT,
        headers         TEXT    NOT NULL,
        body_sha256     BLOB    NOT NULL CHECK (length(body_sha256) = 32),
        body_bytes      INTEGER NOT NULL,
        verdict         INTEGER NOT NULL,
        last_attempt_at INTEGER NOT NULL,
        attempt_count   INTEGER NOT NULL,
        attempts        TEXT    NOT NULL,
        -- 1 when delivery_id is DeliveryId::for_body(provider, body_sha256).
        id_derived      INTEGER NOT NULL CHECK (id_derived IN (0, 1)),
        -- Last: reading the other columns never walks a large body's pages.
        body            BLOB
    );
    INSERT INTO deliveries_3 (sequence, delivery_id, provider, received_at, url, headers,
        body_sha256, body_bytes, verdict, last_attempt_at, attempt_count, attempts,
        id_derived, body)
    SELECT sequence, delivery_id, provider, received_at, url, headers,
        body_sha256, body_bytes, verdict, last_attempt_at, attempt_count, attempts,
        0, body
    FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_3 RENAME TO deliveries;
    -- One body of one provider is one delivery: a derived id says so by
    -- itself; any other id is held to it here.
    CREATE UNIQUE INDEX deliveries_body ON deliveries (provider, body_sha256)
        WHERE id_derived = 0;
    CREATE INDEX deliveries_received ON deliveries (received_at, sequence);
    CREATE INDEX deliveries_dead ON deliveries (verdict, provider, received_at, sequence)
        WHERE verdict > 2;
    "#,
    // 4: receipt order is sequence order (the service never stores a
    // delivery received before the last one), so a time range is found by
    // searching the sequence and the receipt-time index goes: a delivery
    // writes one b-tree fewer. Deliveries stored before are renumbered in
    // receipt order (their ids, which the audit trail names, stay).
    r#"
    CREATE TABLE deliveries_4 (
        sequence        INTEGER PRIMARY KEY,
        delivery_id     BLOB    NOT NULL UNIQUE CHECK (length(delivery_id) = 16),
        provider        TEXT    NOT NULL,
        received_at     INTEGER NOT NULL,
        url             TEXT,
        headers         TEXT    NOT NULL,
        body_sha256     BLOB    NOT NULL CHECK (length(body_sha256) = 32),
        body_bytes      INTEGER NOT NULL,
        verdict         INTEGER NOT NULL,
        last_attempt_at INTEGER NOT NULL,
        attempt_count   INTEGER NOT NULL,
        attempts        TEXT    NOT NULL,
        id_derived      INTEGER NOT NULL CHECK (id_derived IN (0, 1)),
        body            BLOB
    );
    INSERT INTO deliveries_4 (sequence, delivery_id, provider, received_at, url, headers,
        body_sha256, body_bytes, verdict, last_attempt_at, attempt_count, attempts,
        id_derived, body)
    SELECT row_number() OVER (ORDER BY received_at, sequence), delivery_id, provider,
        received_at, url, headers, body_sha256, body_bytes, verdict, last_attempt_at,
        attempt_count, attempts, id_derived, body
    FROM deliveries;
    DROP TABLE deliveries;
    ALTER TABLE deliveries_4 RENAME TO deliveries;
    CREATE UNIQUE INDEX deliveries_body ON deliveries (provider, body_sha256)
        WHERE id_derived = 0;
    CREATE INDEX deliveries_dead ON deliveries (verdict, provider, received_at, sequence)
        WHERE verdict > 2;
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}
