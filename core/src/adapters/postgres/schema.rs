//! Embedded, versioned, forward-only migrations.
//!
//! The schema version is the highest row of `walletlog_schema`, in the
//! schema the connection's `search_path` selects (one ledger per schema).
//! Migration N takes a schema from version N-1 to N, in one transaction,
//! under the ledger's advisory lock. Never edit a released migration: add
//! the next one.

/// The migrations, in order. The schema version is the number applied.
pub const MIGRATIONS: &[&str] = &[
    // 1: events, audit trail, balance rollups, settings; append-only
    // triggers on events and audit records.
    r#"
    CREATE TABLE events (
        sequence          bigint   PRIMARY KEY CHECK (sequence > 0),
        event_id          uuid     NOT NULL,
        wallet_id         text     NOT NULL,
        provider          text     NOT NULL,
        event_type        smallint NOT NULL CHECK (event_type BETWEEN 0 AND 7),
        amount            numeric  NOT NULL,
        currency          text     NOT NULL,
        provider_event_id text,
        idempotency_key   text,
        metadata          text     NOT NULL,
        occurred_at       bigint   NOT NULL,
        created_at        bigint   NOT NULL,
        -- The last line of defence behind the dedupe check. NULLs are
        -- distinct, so events without the key never collide.
        CONSTRAINT events_event_id UNIQUE (event_id),
        CONSTRAINT events_provider_event UNIQUE (provider, provider_event_id),
        CONSTRAINT events_idempotency_key UNIQUE (idempotency_key)
    );
    -- History pages (keyset on occurred_at, sequence) and as-of sums.
    CREATE INDEX events_wallet_time ON events (wallet_id, occurred_at, sequence);
    COMMENT ON TABLE events IS
        'walletlog events, append-only. occurred_at and created_at are microseconds since the Unix epoch, UTC.';

    CREATE TABLE audit (
        sequence       bigint   PRIMARY KEY CHECK (sequence > 0),
        recorded_at    bigint   NOT NULL,
        action         smallint NOT NULL,
        event_id       uuid     NOT NULL,
        event_sequence bigint   NOT NULL,
        matched_on     smallint,
        actor          text     NOT NULL,
        fingerprint    bytea    NOT NULL,
        body_sha256    bytea,
        prev_hash      bytea    NOT NULL,
        hash           bytea    NOT NULL
    );
    COMMENT ON TABLE audit IS 'walletlog audit trail, a hash chain, append-only.';

    -- Balance rollups per wallet, currency and hour bucket (by occurred_at,
    -- the hour's start in microseconds), plus one all-time row per wallet
    -- and currency whose bucket is 9223372036854775807. The current balance
    -- reads the all-time row; a past balance sums the buckets before its hour.
    CREATE TABLE rollups (
        wallet_id        text    NOT NULL,
        bucket           bigint  NOT NULL,
        currency         text    NOT NULL,
        available        numeric NOT NULL,
        held             numeric NOT NULL,
        event_count      bigint  NOT NULL,
        last_occurred_at bigint,
        PRIMARY KEY (wallet_id, bucket, currency)
    );

    CREATE TABLE meta (
        key   text  PRIMARY KEY,
        value bytea NOT NULL
    );

    -- Nobody rewrites history: UPDATE, DELETE and TRUNCATE of events and
    -- audit records are refused by the database, whoever asks. (An owner
    -- can still disable the trigger; verify_audit catches what they edit.)
    CREATE FUNCTION walletlog_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
        RAISE EXCEPTION 'walletlog: % on % is refused: events and audit records are append-only',
            TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $fn$;
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION walletlog_append_only();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION walletlog_append_only();
    CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION walletlog_append_only();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION walletlog_append_only();

    -- A writer that assumed the ledger's last sequences (from its own last
    -- commit) checks them under the lock, in the statement that depends on
    -- them; SQLSTATE WL001 tells it to start again with fresh ones.
    CREATE FUNCTION walletlog_expect(actual bigint, expected bigint, what text)
        RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
        IF actual IS DISTINCT FROM expected THEN
            RAISE EXCEPTION 'walletlog: the last % sequence is %, not % as this writer assumed',
                what, actual, expected
                USING ERRCODE = 'WL001';
        END IF;
        RETURN true;
    END
    $fn$;
    "#,
    // 2: the webhook inbox; audit records that name their delivery;
    // events whose time was estimated (plugin contract 1.1). Adding a
    // column fires no row trigger: the append-only rule stands.
    r#"
    ALTER TABLE audit ADD COLUMN delivery_id uuid;
    ALTER TABLE events ADD COLUMN occurred_at_estimated boolean NOT NULL DEFAULT false;

    -- One row per body of one provider; its attempts (receipts and
    -- replays) as JSON text, its latest verdict and attempt time as columns
    -- for listings and retention. Replays update a row, retention deletes
    -- rows: deliveries are not append-only (the audit trail is).
    CREATE TABLE deliveries (
        sequence        bigint   PRIMARY KEY CHECK (sequence > 0),
        delivery_id     uuid     NOT NULL UNIQUE,
        provider        text     NOT NULL,
        received_at     bigint   NOT NULL,
        url             text,
        headers         text     NOT NULL,
        body            bytea,
        body_sha256     bytea    NOT NULL CHECK (length(body_sha256) = 32),
        body_bytes      bigint   NOT NULL,
        verdict         smallint NOT NULL,
        last_attempt_at bigint   NOT NULL,
        attempt_count   bigint   NOT NULL,
        attempts        text     NOT NULL,
        CONSTRAINT deliveries_body UNIQUE (provider, body_sha256)
    );
    CREATE INDEX deliveries_received ON deliveries (received_at, sequence);
    -- Dead letters by provider and verdict: only what is neither ingested
    -- (1) nor ignored (2), so that a delivery that went in touches one
    -- index fewer.
    CREATE INDEX deliveries_dead ON deliveries (verdict, provider, received_at, sequence)
        WHERE verdict > 2;
    COMMENT ON TABLE deliveries IS
        'walletlog webhook inbox. received_at and last_attempt_at are microseconds since the Unix epoch, UTC.';
    "#,
    // 3: the write statement as a function, so that a whole write
    // transaction can be one statement in an implicit transaction: one
    // message to the server and one answer, as for a plain INSERT. It takes
    // the ledger's lock itself (again, when the transaction already holds
    // it: the lock is re-entrant), then inserts the events whose rollup rows
    // the writer knew, appends the audit records after checking that the
    // audit head and the number of new events are the ones the writer
    // assumed, and writes the rollup rows. Each statement of a VOLATILE
    // function takes a new snapshot at READ COMMITTED, so everything after
    // the lock sees every earlier writer's commit.
    //
    // $1-$11: the audit records' sequence, recorded_at, action, event_id,
    // event_sequence, matched_on, actor, fingerprint, body_sha256,
    // prev_hash, hash; $12-$18: the rollup rows' wallet_id, bucket,
    // currency, available, held, event_count, last_occurred_at; $19: the
    // assumed last audit sequence; $20-$31: the events' sequence, event_id,
    // wallet_id, provider, event_type, amount, currency, provider_event_id,
    // idempotency_key, metadata, occurred_at, created_at; $32: how many of
    // them must be new; $33: the audit records' delivery_id; $34: the
    // events' occurred_at_estimated; $35: the ledger's lock key.
    r#"
    CREATE FUNCTION walletlog_write(
        bigint[], bigint[], smallint[], uuid[], bigint[], smallint[], text[],
        bytea[], bytea[], bytea[], bytea[],
        text[], bigint[], text[], text[], text[], bigint[], bigint[],
        bigint,
        bigint[], uuid[], text[], text[], smallint[], text[], text[], text[],
        text[], text[], bigint[], bigint[],
        bigint, uuid[], boolean[], bigint
    ) RETURNS void LANGUAGE plpgsql VOLATILE AS $fn$
    BEGIN
        PERFORM pg_advisory_xact_lock($35);
        WITH new_events AS (
            INSERT INTO events (sequence, event_id, wallet_id, provider, event_type, amount,
                currency, provider_event_id, idempotency_key, metadata, occurred_at,
                created_at, occurred_at_estimated)
            SELECT s, i, w, p, t, a::numeric, c, pe, ik, m, o, ca, oe
            FROM unnest($20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $34)
                AS e (s, i, w, p, t, a, c, pe, ik, m, o, ca, oe)
            ON CONFLICT DO NOTHING
            RETURNING 1
        ), appended AS (
            INSERT INTO audit (sequence, recorded_at, action, event_id, event_sequence,
                matched_on, actor, fingerprint, body_sha256, prev_hash, hash, delivery_id)
            SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $33)
            WHERE (SELECT CASE WHEN walletlog_expect(
                    (SELECT coalesce(max(sequence), 0) FROM audit), $19, 'audit record')
                THEN walletlog_expect((SELECT count(*) FROM new_events), $32, 'new event')
                END)
        )
        INSERT INTO rollups (wallet_id, bucket, currency, available, held, event_count,
            last_occurred_at)
        SELECT w, b, c, a::numeric, h::numeric, n, l
        FROM unnest($12, $13, $14, $15, $16, $17, $18) AS r (w, b, c, a, h, n, l)
        ON CONFLICT (wallet_id, bucket, currency) DO UPDATE SET
            available = EXCLUDED.available, held = EXCLUDED.held,
            event_count = EXCLUDED.event_count, last_occurred_at = EXCLUDED.last_occurred_at;
    END
    $fn$;
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}
