/*
 * Every function of walletlog.h and its error paths, on a real SQLite file.
 *
 * Usage: test_api SCRATCH_DIR
 */
#include <stdint.h>

#include "check.h"

static char db_path[4096];

/* A pointer that is never a valid output: outputs must stay untouched on failure. */
#define SENTINEL ((char *)(uintptr_t)0x5e47)

static const char *EVENT_1 =
    "{\"event_id\":\"0191f0c2-7a3e-7000-8000-000000000001\",\"wallet_id\":\"w1\","
    "\"provider\":\"stripe\",\"event_type\":\"deposit\",\"amount\":\"12.30\","
    "\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
    "\"provider_event_id\":\"evt_1\",\"idempotency_key\":\"key-1\","
    "\"metadata\":{\"order\":\"A-1\"}}";

static void test_version_and_status_names(void) {
    CHECK(strcmp(wl_version(), "0.1.0") == 0);
    CHECK(strcmp(wl_status_name(WL_OK), "WL_OK") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_INVALID_ARGUMENT), "WL_ERR_INVALID_ARGUMENT") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_VALIDATION), "WL_ERR_VALIDATION") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_CONFLICT), "WL_ERR_CONFLICT") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_NOT_FOUND), "WL_ERR_NOT_FOUND") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_SIGNATURE), "WL_ERR_SIGNATURE") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_PLUGIN), "WL_ERR_PLUGIN") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_STORAGE), "WL_ERR_STORAGE") == 0);
    CHECK(strcmp(wl_status_name(WL_ERR_PANIC), "WL_ERR_PANIC") == 0);
    CHECK(strcmp(wl_status_name(9), "WL_UNKNOWN_STATUS") == 0);
    CHECK(strcmp(wl_status_name(-1), "WL_UNKNOWN_STATUS") == 0);
}

static void test_open_errors(const char *dir) {
    wl_ledger *led = (wl_ledger *)SENTINEL;
    char path[4096];

    CHECK_STATUS(wl_ledger_open(NULL, NULL, &led), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "path");
    CHECK(led == (wl_ledger *)SENTINEL);
    CHECK_STATUS(wl_ledger_open(":memory:", NULL, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "out_ledger");

    CHECK_STATUS(wl_ledger_open("\xff\xfe.db", NULL, &led), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "not valid UTF-8");

    CHECK_STATUS(wl_ledger_open(":memory:", "{\"durability\":", &led), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "not valid JSON");
    CHECK_STATUS(wl_ledger_open(":memory:", "{\"durability\":\"sometimes\"}", &led),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "durability");
    CHECK_STATUS(wl_ledger_open(":memory:", "{\"colour\":\"red\"}", &led), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "colour");
    CHECK_STATUS(wl_ledger_open(":memory:", "{\"audit_key_hex\":\"xyz\"}", &led),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "audit_key_hex");
    CHECK_STATUS(wl_ledger_open(":memory:", "[]", &led), WL_ERR_VALIDATION);
    CHECK_STATUS(
        wl_ledger_open(":memory:", "{\"inbox_limits\":{\"deliveries_max\":0}}", &led),
        WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "deliveries_max");
    CHECK(led == (wl_ledger *)SENTINEL);

    /* A file that is not a walletlog database is refused and left as it is. */
    snprintf(path, sizeof path, "%s/garbage.db", dir);
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 4096; i++) fputc('G', f);
    fclose(f);
    CHECK_STATUS(wl_ledger_open(path, NULL, &led), WL_ERR_STORAGE);
    CHECK(led == (wl_ledger *)SENTINEL);
    size_t len = 0;
    unsigned char *content = read_file(path, &len);
    CHECK(len == 4096 && content[0] == 'G' && content[4095] == 'G');
    free(content);

    /* A directory that does not exist. */
    snprintf(path, sizeof path, "%s/no/such/dir/x.db", dir);
    CHECK_STATUS(wl_ledger_open(path, NULL, &led), WL_ERR_STORAGE);

    /* Last error as JSON, and its reset by a successful call. */
    char *err = NULL;
    CHECK_STATUS(wl_ledger_open(":memory:", "{\"busy_timeout_ms\":-1}", &led), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_last_error_json(&err), WL_OK);
    CHECK_CONTAINS(err, "\"kind\":\"validation\"");
    CHECK_CONTAINS(err, "\"field\":\"busy_timeout_ms\"");
    wl_string_free(err);
    CHECK_STATUS(wl_last_error_json(NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_open(":memory:", "{\"durability\":\"normal\"}", &led), WL_OK);
    CHECK(led != NULL && led != (wl_ledger *)SENTINEL);
    CHECK(strcmp(wl_last_error_message(), "") == 0);
    err = SENTINEL;
    CHECK_STATUS(wl_last_error_json(&err), WL_ERR_NOT_FOUND);
    CHECK(err == SENTINEL);
    wl_ledger_close(led);
}

static void test_ingest(wl_ledger *led) {
    char *out = SENTINEL;

    CHECK_STATUS(wl_ledger_ingest_json(led, EVENT_1, &out), WL_OK);
    CHECK_CONTAINS(out, "\"created\":true");
    CHECK_CONTAINS(out, "\"matched_on\":null");
    CHECK_CONTAINS(out, "\"amount\":\"12.3\""); /* stored normalized */
    CHECK_CONTAINS(out, "\"sequence\":1");
    CHECK_CONTAINS(out, "\"metadata\":{\"order\":\"A-1\"}");
    wl_string_free(out);

    /* The same event again, by each key alone: a duplicate, the original returned. */
    const char *replays[3][2] = {
        {"{\"event_id\":\"0191f0c2-7a3e-7000-8000-000000000001\",\"wallet_id\":\"w1\","
         "\"provider\":\"stripe\",\"event_type\":\"deposit\",\"amount\":\"12.3\","
         "\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T04:04:05+01:00\","
         "\"provider_event_id\":\"evt_1\"}",
         "\"matched_on\":\"event_id\""},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"12.300\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
         "\"provider_event_id\":\"evt_1\",\"metadata\":{\"order\":\"changed\"}}",
         "\"matched_on\":\"provider_event_id\""},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"12.30\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
         "\"provider_event_id\":\"evt_1\",\"idempotency_key\":\"key-1\"}",
         "\"matched_on\":\"provider_event_id\""},
    };
    for (int i = 0; i < 3; i++) {
        out = NULL;
        CHECK_STATUS(wl_ledger_ingest_json(led, replays[i][0], &out), WL_OK);
        CHECK_CONTAINS(out, "\"created\":false");
        CHECK_CONTAINS(out, "\"duplicate\":true");
        CHECK_CONTAINS(out, replays[i][1]);
        CHECK_CONTAINS(out, "\"order\":\"A-1\"");
        CHECK_CONTAINS(out, "\"sequence\":1");
        wl_string_free(out);
    }
    out = NULL;
    CHECK_STATUS(wl_ledger_ingest_json(led,
                                       "{\"wallet_id\":\"w1\",\"provider\":\"other\","
                                       "\"event_type\":\"deposit\",\"amount\":\"12.30\","
                                       "\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
                                       "\"idempotency_key\":\"key-1\"}",
                                       &out),
                 WL_ERR_CONFLICT);
    CHECK(out == NULL);

    /* A conflicting replay: refused, named, nothing stored. */
    out = SENTINEL;
    CHECK_STATUS(wl_ledger_ingest_json(led,
                                       "{\"wallet_id\":\"w1\",\"provider\":\"stripe\","
                                       "\"event_type\":\"deposit\",\"amount\":\"99.00\","
                                       "\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
                                       "\"provider_event_id\":\"evt_1\"}",
                                       &out),
                 WL_ERR_CONFLICT);
    CHECK(out == SENTINEL);
    CHECK_CONTAINS(wl_last_error_message(), "provider_event_id");
    CHECK_CONTAINS(wl_last_error_message(), "amount");
    char *err = NULL;
    CHECK_STATUS(wl_last_error_json(&err), WL_OK);
    CHECK_CONTAINS(err, "\"kind\":\"conflict\"");
    CHECK_CONTAINS(err, "\"existing_event_id\":\"0191f0c2-7a3e-7000-8000-000000000001\"");
    wl_string_free(err);

    /* Bad input: a clear error naming the field, nothing stored. */
    struct {
        const char *json;
        wl_status status;
        const char *says;
    } bad[] = {
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":12.5,\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\"}",
         WL_ERR_VALIDATION, "amount"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"-1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\"}",
         WL_ERR_VALIDATION, "amount"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"NaN\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\"}",
         WL_ERR_VALIDATION, "amount"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"gift\","
         "\"amount\":\"1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\"}",
         WL_ERR_VALIDATION, "event_type"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"1\",\"currency\":\"usd\",\"occurred_at\":\"2026-01-02T03:04:05Z\"}",
         WL_ERR_VALIDATION, "currency"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02 03:04:05\"}",
         WL_ERR_VALIDATION, "occurred_at"},
        {"{\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\"}",
         WL_ERR_VALIDATION, "wallet_id"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"Stripe!\",\"event_type\":\"deposit\","
         "\"amount\":\"1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\"}",
         WL_ERR_VALIDATION, "provider"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
         "\"metadata\":[1]}",
         WL_ERR_VALIDATION, "metadata"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
         "\"event_id\":\"not-a-uuid\"}",
         WL_ERR_VALIDATION, "event_id"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
         "\"amount\":\"1\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T03:04:05Z\","
         "\"idempotency-key\":\"typo\"}",
         WL_ERR_VALIDATION, "idempotency-key"},
        {"{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"dep", WL_ERR_VALIDATION,
         "not valid JSON"},
        {"", WL_ERR_VALIDATION, "not valid JSON"},
        {"[1,2]", WL_ERR_VALIDATION, "must be a JSON object"},
        {"{\"wallet_id\":\"w\xc3\x28\"}", WL_ERR_INVALID_ARGUMENT, "not valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = SENTINEL;
        CHECK_STATUS(wl_ledger_ingest_json(led, bad[i].json, &out), bad[i].status);
        CHECK(out == SENTINEL);
        CHECK_CONTAINS(wl_last_error_message(), bad[i].says);
    }

    /* NULL arguments. */
    CHECK_STATUS(wl_ledger_ingest_json(NULL, EVENT_1, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "ledger");
    CHECK_STATUS(wl_ledger_ingest_json(led, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "event_json");
    CHECK_STATUS(wl_ledger_ingest_json(led, EVENT_1, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "out_result_json");

    /* Still exactly one event stored. */
    CHECK_STATUS(wl_ledger_changes_since_json(led, 0, 100, &out), WL_OK);
    CHECK(count_of(out, "\"event_id\"") == 1);
    wl_string_free(out);
}

static void test_batch(wl_ledger *led) {
    char *out = SENTINEL;
    const char *batch =
        "[{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"withdrawal\","
        "\"amount\":\"2.30\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-03T00:00:00Z\","
        "\"provider_event_id\":\"evt_2\"},"
        "{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"hold\","
        "\"amount\":\"5\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-04T00:00:00Z\","
        "\"provider_event_id\":\"evt_3\"},"
        "{\"wallet_id\":\"w1\",\"provider\":\"adyen\",\"event_type\":\"deposit\","
        "\"amount\":\"1000\",\"currency\":\"JPY\",\"occurred_at\":\"2026-01-05T00:00:00Z\","
        "\"provider_event_id\":\"evt_4\"}]";
    CHECK_STATUS(wl_ledger_ingest_batch_json(led, batch, &out), WL_OK);
    CHECK(count_of(out, "\"created\":true") == 3);
    wl_string_free(out);

    /* Replayed as a batch: all duplicates. */
    out = NULL;
    CHECK_STATUS(wl_ledger_ingest_batch_json(led, batch, &out), WL_OK);
    CHECK(count_of(out, "\"duplicate\":true") == 3);
    wl_string_free(out);

    /* One bad item: nothing of the batch stored, the index named. */
    const char *half_bad =
        "[{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
        "\"amount\":\"7\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-06T00:00:00Z\","
        "\"provider_event_id\":\"evt_5\"},"
        "{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
        "\"amount\":\"0\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-06T00:00:00Z\"}]";
    out = SENTINEL;
    CHECK_STATUS(wl_ledger_ingest_batch_json(led, half_bad, &out), WL_ERR_VALIDATION);
    CHECK(out == SENTINEL);
    CHECK_CONTAINS(wl_last_error_message(), "item 1");
    char *err = NULL;
    CHECK_STATUS(wl_last_error_json(&err), WL_OK);
    CHECK_CONTAINS(err, "\"index\":1");
    wl_string_free(err);

    const char *conflicting =
        "[{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
        "\"amount\":\"7\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-06T00:00:00Z\","
        "\"provider_event_id\":\"evt_5\"},"
        "{\"wallet_id\":\"w1\",\"provider\":\"stripe\",\"event_type\":\"withdrawal\","
        "\"amount\":\"2.31\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-03T00:00:00Z\","
        "\"provider_event_id\":\"evt_2\"}]";
    CHECK_STATUS(wl_ledger_ingest_batch_json(led, conflicting, &out), WL_ERR_CONFLICT);
    CHECK(out == SENTINEL);
    CHECK_CONTAINS(wl_last_error_message(), "item 1");

    CHECK_STATUS(wl_ledger_ingest_batch_json(led, "{}", &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "array");
    CHECK_STATUS(wl_ledger_ingest_batch_json(led, "[", &out), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_ingest_batch_json(NULL, batch, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_ingest_batch_json(led, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_ingest_batch_json(led, batch, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);

    /* evt_5 was never stored. */
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(led, "stripe", "evt_5", &out),
                 WL_ERR_NOT_FOUND);
    CHECK(out == SENTINEL);
}

static void test_lookups(wl_ledger *led) {
    char *out = NULL;
    CHECK_STATUS(wl_ledger_get_json(led, "0191f0c2-7a3e-7000-8000-000000000001", &out), WL_OK);
    CHECK_CONTAINS(out, "\"provider_event_id\":\"evt_1\"");
    CHECK_CONTAINS(out, "\"occurred_at\":\"2026-01-02T03:04:05Z\"");
    wl_string_free(out);
    out = NULL;
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(led, "stripe", "evt_1", &out), WL_OK);
    CHECK_CONTAINS(out, "\"event_id\":\"0191f0c2-7a3e-7000-8000-000000000001\"");
    wl_string_free(out);
    out = NULL;
    CHECK_STATUS(wl_ledger_get_by_idempotency_key_json(led, "key-1", &out), WL_OK);
    CHECK_CONTAINS(out, "\"idempotency_key\":\"key-1\"");
    wl_string_free(out);

    out = SENTINEL;
    CHECK_STATUS(wl_ledger_get_json(led, "0191f0c2-7a3e-7000-8000-0000000000ff", &out),
                 WL_ERR_NOT_FOUND);
    CHECK_CONTAINS(wl_last_error_message(), "not found");
    CHECK_STATUS(wl_ledger_get_json(led, "nope", &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "event_id");
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(led, "stripe", "evt_404", &out),
                 WL_ERR_NOT_FOUND);
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(led, "BAD PROVIDER", "evt_1", &out),
                 WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_get_by_idempotency_key_json(led, "key-404", &out), WL_ERR_NOT_FOUND);
    CHECK_STATUS(wl_ledger_get_by_idempotency_key_json(led, "", &out), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_get_json(NULL, "x", &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_json(led, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_json(led, "0191f0c2-7a3e-7000-8000-000000000001", NULL),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(NULL, "stripe", "evt_1", &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(led, NULL, "evt_1", &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(led, "stripe", NULL, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_by_provider_event_id_json(led, "stripe", "evt_1", NULL),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_by_idempotency_key_json(NULL, "key-1", &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_by_idempotency_key_json(led, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_get_by_idempotency_key_json(led, "key-1", NULL),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);
}

/* Copies the value of "next_cursor":"..." into buf; returns 0 when it is null. */
static int next_cursor(const char *page, char *buf, size_t size) {
    const char *p = strstr(page, "\"next_cursor\":\"");
    if (!p) return 0;
    p += strlen("\"next_cursor\":\"");
    const char *end = strchr(p, '"');
    size_t n = (size_t)(end - p);
    if (n + 1 > size) return 0;
    memcpy(buf, p, n);
    buf[n] = 0;
    return 1;
}

static void test_list(wl_ledger *led) {
    char *out = NULL;
    /* All four events, newest first. */
    CHECK_STATUS(wl_ledger_list_json(led, "w1", NULL, &out), WL_OK);
    CHECK(count_of(out, "\"event_id\"") == 4);
    CHECK_CONTAINS(out, "\"next_cursor\":null");
    const char *jpy = strstr(out, "\"JPY\"");
    const char *usd = strstr(out, "\"USD\"");
    CHECK(jpy != NULL && usd != NULL && jpy < usd);
    wl_string_free(out);

    /* Pages of one, oldest first, following cursors: every event once, in order. */
    char query[512];
    char cursor[256] = "";
    const char *expected[] = {"evt_1", "evt_2", "evt_3", "evt_4"};
    int pages = 0;
    for (;;) {
        if (cursor[0])
            snprintf(query, sizeof query, "{\"limit\":1,\"order\":\"asc\",\"cursor\":\"%s\"}", cursor);
        else
            snprintf(query, sizeof query, "{\"limit\":1,\"order\":\"asc\"}");
        out = NULL;
        CHECK_STATUS(wl_ledger_list_json(led, "w1", query, &out), WL_OK);
        if (!out) break;
        if (pages < 4) CHECK_CONTAINS(out, expected[pages]);
        pages++;
        int more = next_cursor(out, cursor, sizeof cursor);
        wl_string_free(out);
        if (!more || pages > 10) break;
    }
    CHECK(pages == 4);

    /* Filters. */
    out = NULL;
    CHECK_STATUS(wl_ledger_list_json(led, "w1",
                                     "{\"event_types\":[\"hold\",\"withdrawal\"],\"currency\":\"USD\"}",
                                     &out),
                 WL_OK);
    CHECK(count_of(out, "\"event_id\"") == 2);
    CHECK_CONTAINS(out, "evt_2");
    CHECK_CONTAINS(out, "evt_3");
    wl_string_free(out);
    out = NULL;
    CHECK_STATUS(wl_ledger_list_json(led, "w1",
                                     "{\"since\":\"2026-01-03T00:00:00Z\",\"until\":\"2026-01-05T00:00:00Z\"}",
                                     &out),
                 WL_OK);
    CHECK(count_of(out, "\"event_id\"") == 2);
    wl_string_free(out);
    out = NULL;
    CHECK_STATUS(wl_ledger_list_json(led, "nobody", "{}", &out), WL_OK);
    CHECK_CONTAINS(out, "{\"events\":[],\"next_cursor\":null}");
    wl_string_free(out);

    out = SENTINEL;
    CHECK_STATUS(wl_ledger_list_json(led, "w1", "{\"limit\":0}", &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "limit");
    CHECK_STATUS(wl_ledger_list_json(led, "w1", "{\"limit\":1001}", &out), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_list_json(led, "w1", "{\"cursor\":\"garbage\"}", &out),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "cursor");
    CHECK_STATUS(wl_ledger_list_json(led, "w1", "{\"order\":\"sideways\"}", &out),
                 WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_list_json(led, "w1", "{\"event_types\":[\"gift\"]}", &out),
                 WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_list_json(led, "w1", "{\"pagesize\":3}", &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "pagesize");
    CHECK_STATUS(wl_ledger_list_json(led, "w1", "{\"limit\":", &out), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_list_json(led, "", NULL, &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "wallet_id");
    CHECK_STATUS(wl_ledger_list_json(NULL, "w1", NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_list_json(led, NULL, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_list_json(led, "w1", NULL, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);
}

static void test_balance(wl_ledger *led) {
    char *out = NULL;
    /* 12.30 - 2.30 = 10 (amounts come back normalized); hold 5 moves 5 to held. */
    CHECK_STATUS(wl_ledger_balance_json(led, "w1", NULL, &out), WL_OK);
    CHECK_CONTAINS(out, "\"USD\":{\"available\":\"5\",\"event_count\":3,\"held\":\"5\","
                        "\"last_occurred_at\":\"2026-01-04T00:00:00Z\",\"total\":\"10\"}");
    CHECK_CONTAINS(out, "\"JPY\":{\"available\":\"1000\"");
    wl_string_free(out);
    out = NULL;
    CHECK_STATUS(wl_ledger_balance_json(led, "w1", "2026-01-03T12:00:00+00:00", &out), WL_OK);
    CHECK_CONTAINS(out, "\"USD\":{\"available\":\"10\",\"event_count\":2,\"held\":\"0\"");
    CHECK(strstr(out, "JPY") == NULL);
    wl_string_free(out);
    out = NULL;
    CHECK_STATUS(wl_ledger_balance_json(led, "w1", "2025-01-01T00:00:00Z", &out), WL_OK);
    CHECK(out != NULL && strcmp(out, "{}") == 0);
    wl_string_free(out);

    out = SENTINEL;
    CHECK_STATUS(wl_ledger_balance_json(led, "w1", "yesterday", &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "as_of");
    CHECK_STATUS(wl_ledger_balance_json(led, "w\x01", NULL, &out), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_balance_json(NULL, "w1", NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_balance_json(led, NULL, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_balance_json(led, "w1", "\xff", &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_balance_json(led, "w1", NULL, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);
}

static void test_changes_and_audit(wl_ledger *led) {
    char *out = NULL;
    CHECK_STATUS(wl_ledger_changes_since_json(led, 2, 1000, &out), WL_OK);
    CHECK(count_of(out, "\"event_id\"") == 2);
    CHECK_CONTAINS(out, "\"sequence\":3");
    CHECK_CONTAINS(out, "\"sequence\":4");
    wl_string_free(out);

    /* 1 created + 3 duplicates + 2 conflicts refused before storage do not count;
       every attempt that reached storage is audited. */
    out = NULL;
    CHECK_STATUS(wl_ledger_audit_log_json(led, 0, 1000, &out), WL_OK);
    CHECK(count_of(out, "\"action\":\"created\"") == 4);
    CHECK(count_of(out, "\"action\":\"duplicate\"") == 6);
    CHECK(count_of(out, "\"action\":\"conflict\"") >= 1);
    CHECK_CONTAINS(out, "\"actor\":\"api\"");
    wl_string_free(out);

    out = NULL;
    CHECK_STATUS(wl_ledger_verify_audit_json(led, &out), WL_OK);
    CHECK_CONTAINS(out, "\"ok\":true");
    CHECK_CONTAINS(out, "\"events_checked\":4");
    CHECK_CONTAINS(out, "\"first_bad_sequence\":null");
    wl_string_free(out);

    out = SENTINEL;
    CHECK_STATUS(wl_ledger_changes_since_json(led, 0, 0, &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "limit");
    CHECK_STATUS(wl_ledger_audit_log_json(led, 0, 10001, &out), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_changes_since_json(NULL, 0, 10, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_changes_since_json(led, 0, 10, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_audit_log_json(NULL, 0, 10, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_audit_log_json(led, 0, 10, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_verify_audit_json(NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_verify_audit_json(led, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);
}

/* The metrics count what this handle did: the four events it created. */
static void test_metrics(wl_ledger *led) {
    char *out = NULL;
    CHECK_STATUS(wl_ledger_metrics_text(led, &out), WL_OK);
    CHECK_CONTAINS(out, "walletlog_ingestions_total{outcome=\"created\",actor_kind=\"api\"} 4\n");
    CHECK_CONTAINS(out, "# TYPE walletlog_commit_duration_seconds histogram");
    CHECK_CONTAINS(out, "walletlog_storage_errors_total{kind=\"busy\"} 0\n");
    CHECK(out != NULL && strcmp(out + strlen(out) - 6, "# EOF\n") == 0);
    wl_string_free(out);

    out = SENTINEL;
    CHECK_STATUS(wl_ledger_metrics_text(NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_metrics_text(led, NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);
}

/* Signed audit checkpoints: the ledger extends its own; the wrong key, a
   changed byte and malformed arguments are refused, outputs untouched. */
static void test_checkpoints(wl_ledger *led) {
    char *signing = NULL, *verifying = NULL;
    CHECK_STATUS(wl_ed25519_keypair(&signing, &verifying), WL_OK);
    CHECK(signing != NULL && strlen(signing) == 64);
    CHECK(verifying != NULL && strlen(verifying) == 64);
    char *cp = NULL;
    CHECK_STATUS(wl_ledger_audit_checkpoint(led, signing, &cp), WL_OK);
    CHECK_CONTAINS(cp, "walletlog-checkpoint v1\nledger ");
    CHECK_CONTAINS(cp, "\nsignature ");

    /* The checkpoint as a JSON array of one string: newlines escaped. */
    char json[2048] = "[\"";
    size_t n = strlen(json);
    for (const char *c = cp; c && *c && n + 4 < sizeof json; c++) {
        if (*c == '\n') {
            json[n++] = '\\';
            json[n++] = 'n';
        } else {
            json[n++] = *c;
        }
    }
    json[n] = 0;
    strcat(json, "\"]");
    char *out = NULL;
    CHECK_STATUS(wl_ledger_verify_audit_checkpoints_json(led, json, verifying, &out), WL_OK);
    CHECK_CONTAINS(out, "\"ok\":true");
    wl_string_free(out);

    /* The wrong key: a damaged trail as far as this key can tell. */
    char *other_signing = NULL, *other_verifying = NULL;
    CHECK_STATUS(wl_ed25519_keypair(&other_signing, &other_verifying), WL_OK);
    out = NULL;
    CHECK_STATUS(wl_ledger_verify_audit_checkpoints_json(led, json, other_verifying, &out), WL_OK);
    CHECK_CONTAINS(out, "\"ok\":false");
    CHECK_CONTAINS(out, "\"problem\":\"checkpoint_bad_signature\"");
    wl_string_free(out);

    out = SENTINEL;
    CHECK_STATUS(wl_ledger_verify_audit_checkpoints_json(led, "{}", verifying, &out),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "checkpoints");
    CHECK_STATUS(wl_ledger_verify_audit_checkpoints_json(led, json, "abcd", &out),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "verifying_key");
    CHECK_STATUS(wl_ledger_audit_checkpoint(led, "zz", &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "signing_key");
    CHECK_STATUS(wl_ledger_audit_checkpoint(led, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ed25519_keypair(NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);
    wl_string_free(cp);
    wl_string_free(signing);
    wl_string_free(verifying);
    wl_string_free(other_signing);
    wl_string_free(other_verifying);
}

static void test_plugin_and_webhook_errors(wl_ledger *led) {
    char *out = SENTINEL;
    const unsigned char garbage[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x02};
    CHECK_STATUS(wl_ledger_install_plugin(led, garbage, sizeof garbage, &out), WL_ERR_PLUGIN);
    CHECK(out == SENTINEL);
    CHECK_STATUS(wl_ledger_install_plugin(led, NULL, 0, &out), WL_ERR_PLUGIN);
    CHECK_STATUS(wl_ledger_install_plugin(led, NULL, 10, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "wasm");
    CHECK_STATUS(wl_ledger_install_plugin(NULL, garbage, sizeof garbage, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_install_plugin(led, garbage, sizeof garbage, NULL),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_install_plugin_file(led, "/no/such/plugin.wasm", &out),
                 WL_ERR_PLUGIN);
    CHECK_STATUS(wl_ledger_install_plugin_file(led, NULL, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_install_plugin_file(NULL, "x.wasm", &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_install_plugin_file(led, "x.wasm", NULL), WL_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(wl_ledger_set_webhook_secret(led, "stripe", "whsec_x"), WL_OK);
    CHECK_STATUS(wl_ledger_set_webhook_secret(led, "Not A Slug", "whsec_x"), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_set_webhook_secret(led, "stripe", ""), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "secret");
    CHECK_STATUS(wl_ledger_set_webhook_secret(NULL, "stripe", "x"), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_set_webhook_secret(led, NULL, "x"), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_set_webhook_secret(led, "stripe", NULL), WL_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(wl_last_error_message(), "secret");
    CHECK_STATUS(wl_ledger_allow_unsigned(led, "acme"), WL_OK);
    CHECK_STATUS(wl_ledger_allow_unsigned(led, "ACME"), WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_allow_unsigned(NULL, "acme"), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_allow_unsigned(led, NULL), WL_ERR_INVALID_ARGUMENT);

    /* No plugin installed for the provider. */
    const char *body = "{}";
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", "{}", (const uint8_t *)body, 2, NULL, &out),
                 WL_ERR_PLUGIN);
    CHECK_CONTAINS(wl_last_error_message(), "acme");
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", "{\"a\":1}", (const uint8_t *)body, 2,
                                          NULL, &out),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "headers");
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", "[[\"a\"]]", (const uint8_t *)body, 2,
                                          NULL, &out),
                 WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", "{", (const uint8_t *)body, 2, NULL, &out),
                 WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_ingest_webhook(NULL, "acme", "{}", (const uint8_t *)body, 2, NULL, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_ingest_webhook(led, NULL, "{}", (const uint8_t *)body, 2, NULL, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", NULL, (const uint8_t *)body, 2, NULL, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", "{}", NULL, 2, NULL, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", "{}", (const uint8_t *)body, 2, "\xff", &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "acme", "{}", (const uint8_t *)body, 2, NULL, NULL),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK(out == SENTINEL);
}

static void test_request_signing(void) {
    const uint8_t secret[] = "s3cret";
    const char *body = "{\"amount\":\"1\"}";
    char *sig = NULL;
    CHECK_STATUS(wl_sign_request(secret, 6, "POST", "/events", (const uint8_t *)body,
                                 strlen(body), 1767225600, &sig),
                 WL_OK);
    CHECK(sig != NULL && strlen(sig) == 64);
    CHECK_STATUS(wl_verify_request(secret, 6, "POST", "/events", (const uint8_t *)body,
                                   strlen(body), 1767225600, sig, 1767225610, 300),
                 WL_OK);
    /* Tampered body, wrong secret, stale timestamp. */
    CHECK_STATUS(wl_verify_request(secret, 6, "POST", "/events", (const uint8_t *)"{}", 2,
                                   1767225600, sig, 1767225610, 300),
                 WL_ERR_SIGNATURE);
    CHECK_STATUS(wl_verify_request((const uint8_t *)"other", 5, "POST", "/events",
                                   (const uint8_t *)body, strlen(body), 1767225600, sig,
                                   1767225610, 300),
                 WL_ERR_SIGNATURE);
    CHECK_STATUS(wl_verify_request(secret, 6, "POST", "/events", (const uint8_t *)body,
                                   strlen(body), 1767225600, sig, 1767229999, 300),
                 WL_ERR_SIGNATURE);
    CHECK(strstr(wl_last_error_message(), "s3cret") == NULL);
    /* An empty body may be NULL. */
    char *empty_sig = NULL;
    CHECK_STATUS(wl_sign_request(secret, 6, "GET", "/balance", NULL, 0, 1767225600, &empty_sig),
                 WL_OK);
    CHECK_STATUS(wl_verify_request(secret, 6, "GET", "/balance", (const uint8_t *)"", 0,
                                   1767225600, empty_sig, 1767225600, 0),
                 WL_OK);
    wl_string_free(empty_sig);

    char *out = SENTINEL;
    CHECK_STATUS(wl_sign_request(NULL, 6, "POST", "/", NULL, 0, 0, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_sign_request(secret, 6, NULL, "/", NULL, 0, 0, &out), WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_sign_request(secret, 6, "POST", NULL, NULL, 0, 0, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_sign_request(secret, 6, "POST", "/", NULL, 3, 0, &out),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_sign_request(secret, 6, "POST", "/", NULL, 0, 0, NULL),
                 WL_ERR_INVALID_ARGUMENT);
    /* An empty key is one anybody can sign with; time is never negative. */
    CHECK_STATUS(wl_sign_request(NULL, 0, "POST", "/", NULL, 0, 0, &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "secret");
    CHECK_STATUS(wl_sign_request(secret, 6, "POST", "/", NULL, 0, -1, &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "timestamp");
    CHECK_STATUS(wl_verify_request(secret, 0, "POST", "/events", (const uint8_t *)body,
                                   strlen(body), 1767225600, sig, 1767225610, 300),
                 WL_ERR_VALIDATION);
    CHECK_STATUS(wl_verify_request(secret, 6, "POST", "/events", (const uint8_t *)body,
                                   strlen(body), 1767225600, sig, 1767225610, -1),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "tolerance");
    CHECK_STATUS(wl_verify_request(secret, 6, "POST", "/events", (const uint8_t *)body,
                                   strlen(body), 1767225600, sig, -1, 300),
                 WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "now");
    /* The sender's time before 1970 is its request's fault. */
    CHECK_STATUS(wl_verify_request(secret, 6, "POST", "/events", (const uint8_t *)body,
                                   strlen(body), -1, sig, 1767225610, 300),
                 WL_ERR_SIGNATURE);
    CHECK(out == SENTINEL);
    CHECK_STATUS(wl_verify_request(secret, 6, "POST", "/events", (const uint8_t *)body,
                                   strlen(body), 1767225600, NULL, 1767225610, 300),
                 WL_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(wl_verify_request(secret, 6, "\xc0", "/events", (const uint8_t *)body,
                                   strlen(body), 1767225600, sig, 1767225610, 300),
                 WL_ERR_INVALID_ARGUMENT);
    wl_string_free(sig);
}

static void test_panic_and_null_frees(void) {
    CHECK_STATUS(wl_debug_panic(), WL_ERR_PANIC);
    CHECK_CONTAINS(wl_last_error_message(), "panic");
    char *err = NULL;
    CHECK_STATUS(wl_last_error_json(&err), WL_OK);
    CHECK_CONTAINS(err, "\"kind\":\"panic\"");
    wl_string_free(err);
    /* The library still works after a caught panic. */
    wl_ledger *led = NULL;
    CHECK_STATUS(wl_ledger_open(":memory:", NULL, &led), WL_OK);
    wl_ledger_close(led);
    wl_string_free(NULL);
    wl_ledger_close(NULL);
    CHECK(1);
}

static void test_reopen_and_audit_key(const char *dir) {
    /* The events survive closing and reopening the file. */
    wl_ledger *led = NULL;
    char *out = NULL;
    CHECK_STATUS(wl_ledger_open(db_path, "{\"durability\":\"full\",\"busy_timeout_ms\":5000}", &led),
                 WL_OK);
    CHECK_STATUS(wl_ledger_changes_since_json(led, 0, 1000, &out), WL_OK);
    CHECK(count_of(out, "\"event_id\"") == 4);
    wl_string_free(out);
    wl_ledger_close(led);

    /* A keyed ledger must be reopened with its key. */
    char path[4096];
    snprintf(path, sizeof path, "%s/keyed.db", dir);
    led = NULL;
    CHECK_STATUS(wl_ledger_open(path, "{\"audit_key_hex\":\"00112233445566778899aabbccddeeff\"}",
                                &led),
                 WL_OK);
    CHECK_STATUS(wl_ledger_ingest_json(led, EVENT_1, &out), WL_OK);
    wl_string_free(out);
    wl_ledger_close(led);
    led = (wl_ledger *)SENTINEL;
    CHECK_STATUS(wl_ledger_open(path, "{\"audit_key_hex\":\"ffffffff\"}", &led), WL_ERR_STORAGE);
    CHECK(led == (wl_ledger *)SENTINEL);
    CHECK_STATUS(wl_ledger_open(path, "{\"audit_key_hex\":\"00112233445566778899aabbccddeeff\"}",
                                &led),
                 WL_OK);
    out = NULL;
    CHECK_STATUS(wl_ledger_verify_audit_json(led, &out), WL_OK);
    CHECK_CONTAINS(out, "\"ok\":true");
    wl_string_free(out);
    wl_ledger_close(led);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    snprintf(db_path, sizeof db_path, "%s/api.db", argv[1]);
    remove(db_path);

    test_version_and_status_names();
    test_open_errors(argv[1]);

    wl_ledger *led = NULL;
    CHECK_STATUS(wl_ledger_open(db_path, NULL, &led), WL_OK);
    if (led == NULL) return check_finish("test_api");
    test_ingest(led);
    test_batch(led);
    test_lookups(led);
    test_list(led);
    test_balance(led);
    test_changes_and_audit(led);
    test_metrics(led);
    test_checkpoints(led);
    test_plugin_and_webhook_errors(led);
    wl_ledger_close(led);

    test_request_signing();
    test_panic_and_null_frees();
    test_reopen_and_audit_key(argv[1]);
    return check_finish("test_api");
}
