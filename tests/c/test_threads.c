/*
 * One wl_ledger shared by 8 pthreads at once, on a real SQLite file.
 *
 * Every thread offers the same 200 logical events (each under its own
 * provider event id, some also through an idempotency key, in a different
 * order per thread, half singly and half in batches of 10). Exactly one
 * offer of each event may be `created`; every other must be a duplicate;
 * nothing may fail. Then the balance must equal the sum computed here, and
 * the audit chain must verify with one record per offer. The threads' calls
 * are group-committed (durability full, so commits take long enough for
 * the others to queue): fewer commit times than events.
 *
 * Usage: test_threads SCRATCH_DIR
 */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define THREADS 8
#define EVENTS 200
#define BATCH 10

static wl_ledger *ledger;

struct worker {
    int index;
    int created;
    int duplicates;
    int failures;
};

static void event_json(char *buf, size_t size, int i) {
    /* Deposits of (i + 1) + 0.01 * i, every fifth a withdrawal of 0.5. */
    if (i % 5 == 4) {
        snprintf(buf, size,
                 "{\"wallet_id\":\"shared\",\"provider\":\"acme\",\"event_type\":\"withdrawal\","
                 "\"amount\":\"0.5\",\"currency\":\"EUR\",\"occurred_at\":\"2026-03-01T00:%02d:%02dZ\","
                 "\"provider_event_id\":\"ev-%d\",\"idempotency_key\":\"idem-%d\"}",
                 i / 60, i % 60, i, i);
    } else {
        snprintf(buf, size,
                 "{\"wallet_id\":\"shared\",\"provider\":\"acme\",\"event_type\":\"deposit\","
                 "\"amount\":\"%d.%02d\",\"currency\":\"EUR\",\"occurred_at\":\"2026-03-01T00:%02d:%02dZ\","
                 "\"provider_event_id\":\"ev-%d\"}",
                 i + 1, i % 100, i / 60, i % 60, i);
    }
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* How many different "created_at" values `json` holds (at most EVENTS read). */
static int distinct_created_at(const char *json) {
    static char values[EVENTS][40];
    const char *sorted[EVENTS];
    int n = 0;
    const char *key = "\"created_at\":\"";
    for (const char *p = strstr(json, key); p && n < EVENTS; p = strstr(p, key)) {
        p += strlen(key);
        size_t len = strcspn(p, "\"");
        if (len >= sizeof values[n]) len = sizeof values[n] - 1;
        memcpy(values[n], p, len);
        values[n][len] = 0;
        sorted[n] = values[n];
        n++;
    }
    qsort(sorted, (size_t)n, sizeof sorted[0], compare_strings);
    int distinct = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(sorted[i], sorted[i - 1]) != 0) distinct++;
    }
    return distinct;
}

static void tally(struct worker *w, const char *results) {
    w->created += count_of(results, "\"created\":true");
    w->duplicates += count_of(results, "\"duplicate\":true");
}

static void *run(void *arg) {
    struct worker *w = arg;
    char one[512];
    char batch[BATCH * 512 + 8];
    /* Each thread walks the events from its own starting point. */
    int start = (w->index * 37) % EVENTS;
    for (int k = 0; k < EVENTS;) {
        if ((k / BATCH + w->index) % 2 == 0) {
            size_t used = 0;
            batch[used++] = '[';
            for (int b = 0; b < BATCH && k < EVENTS; b++, k++) {
                if (b) batch[used++] = ',';
                event_json(one, sizeof one, (start + k) % EVENTS);
                size_t n = strlen(one);
                memcpy(batch + used, one, n);
                used += n;
            }
            batch[used++] = ']';
            batch[used] = 0;
            char *out = NULL;
            if (wl_ledger_ingest_batch_json(ledger, batch, &out) == WL_OK) {
                tally(w, out);
                wl_string_free(out);
            } else {
                w->failures++;
                fprintf(stderr, "thread %d: batch failed: %s\n", w->index, wl_last_error_message());
            }
        } else {
            for (int b = 0; b < BATCH && k < EVENTS; b++, k++) {
                event_json(one, sizeof one, (start + k) % EVENTS);
                char *out = NULL;
                if (wl_ledger_ingest_json(ledger, one, &out) == WL_OK) {
                    tally(w, out);
                    wl_string_free(out);
                } else {
                    w->failures++;
                    fprintf(stderr, "thread %d: ingest failed: %s\n", w->index,
                            wl_last_error_message());
                }
            }
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/threads.db", argv[1]);
    remove(path);
    CHECK_STATUS(wl_ledger_open(path, "{\"durability\":\"full\"}", &ledger), WL_OK);
    if (!ledger) return check_finish("test_threads");

    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        workers[t] = (struct worker){.index = t};
        CHECK(pthread_create(&threads[t], NULL, run, &workers[t]) == 0);
    }
    int created = 0, duplicates = 0, failures = 0;
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        created += workers[t].created;
        duplicates += workers[t].duplicates;
        failures += workers[t].failures;
    }
    printf("threads: %d created, %d duplicates, %d failures\n", created, duplicates, failures);
    CHECK(created == EVENTS);
    CHECK(duplicates == EVENTS * (THREADS - 1));
    CHECK(failures == 0);

    /* The expected balance, in cents: sum of deposits minus 0.50 per withdrawal. */
    long cents = 0;
    int withdrawals = 0;
    for (int i = 0; i < EVENTS; i++) {
        if (i % 5 == 4) {
            cents -= 50;
            withdrawals++;
        } else {
            cents += (i + 1) * 100 + i % 100;
        }
    }
    /* Amounts come back normalized: no trailing fractional zeros. */
    char amount[64];
    snprintf(amount, sizeof amount, "%ld.%02ld", cents / 100, cents % 100);
    for (size_t n = strlen(amount); amount[n - 1] == '0' || amount[n - 1] == '.'; n--) {
        char last = amount[n - 1];
        amount[n - 1] = 0;
        if (last == '.') break;
    }
    char expected[128];
    snprintf(expected, sizeof expected, "\"EUR\":{\"available\":\"%s\",\"event_count\":%d,",
             amount, EVENTS);
    char *out = NULL;
    CHECK_STATUS(wl_ledger_balance_json(ledger, "shared", NULL, &out), WL_OK);
    CHECK_CONTAINS(out, expected);
    wl_string_free(out);
    CHECK(withdrawals == EVENTS / 5);

    /* Every event stored once; one audit record per offer; the chain intact. */
    out = NULL;
    CHECK_STATUS(wl_ledger_list_json(ledger, "shared", "{\"limit\":1000}", &out), WL_OK);
    CHECK(count_of(out, "\"event_id\"") == EVENTS);
    int commits = distinct_created_at(out);
    printf("threads: %d events stored in %d commits\n", EVENTS, commits);
    CHECK(commits < EVENTS);
    wl_string_free(out);
    out = NULL;
    CHECK_STATUS(wl_ledger_verify_audit_json(ledger, &out), WL_OK);
    CHECK_CONTAINS(out, "\"ok\":true");
    char records[64];
    snprintf(records, sizeof records, "\"records_checked\":%d", EVENTS * THREADS);
    CHECK_CONTAINS(out, records);
    wl_string_free(out);

    wl_ledger_close(ledger);
    return check_finish("test_threads");
}
