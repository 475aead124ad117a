/*
 * history: open a ledger, ingest a few events, print a wallet's history and
 * balance. Build and run (see docs/c.md):
 *
 *   cargo build --release -p walletlog-c
 *   cc -std=c99 -Ibindings/c/include bindings/c/examples/history.c \
 *      -Ltarget/release -lwalletlog -Wl,-rpath,$PWD/target/release -o history
 *   ./history wallet.db
 */
#include <stdio.h>

#include "walletlog.h"

static const char *EVENTS =
    "["
    "{\"wallet_id\":\"alice\",\"provider\":\"stripe\",\"event_type\":\"deposit\","
    "\"amount\":\"100.00\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T09:00:00Z\","
    "\"provider_event_id\":\"evt_1001\"},"
    "{\"wallet_id\":\"alice\",\"provider\":\"stripe\",\"event_type\":\"fee\","
    "\"amount\":\"2.90\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-02T09:00:01Z\","
    "\"provider_event_id\":\"evt_1002\"},"
    "{\"wallet_id\":\"alice\",\"provider\":\"stripe\",\"event_type\":\"hold\","
    "\"amount\":\"25.00\",\"currency\":\"USD\",\"occurred_at\":\"2026-01-03T12:30:00Z\","
    "\"provider_event_id\":\"evt_1003\"}"
    "]";

/* Prints what failed and returns 1. */
static int fail(const char *what, wl_status status) {
    fprintf(stderr, "%s failed: %s: %s\n", what, wl_status_name(status), wl_last_error_message());
    return 1;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "wallet.db";
    wl_ledger *ledger = NULL;
    wl_status status = wl_ledger_open(path, NULL, &ledger);
    if (status != WL_OK) return fail("wl_ledger_open", status);

    /* One transaction; run it twice and the second time all are duplicates. */
    char *results = NULL;
    status = wl_ledger_ingest_batch_json(ledger, EVENTS, &results);
    if (status != WL_OK) {
        wl_ledger_close(ledger);
        return fail("wl_ledger_ingest_batch_json", status);
    }
    printf("ingested: %s\n", results);
    wl_string_free(results);

    char *page = NULL;
    status = wl_ledger_list_json(ledger, "alice", "{\"limit\":10}", &page);
    if (status != WL_OK) {
        wl_ledger_close(ledger);
        return fail("wl_ledger_list_json", status);
    }
    printf("history: %s\n", page);
    wl_string_free(page);

    char *balance = NULL;
    status = wl_ledger_balance_json(ledger, "alice", NULL, &balance);
    if (status != WL_OK) {
        wl_ledger_close(ledger);
        return fail("wl_ledger_balance_json", status);
    }
    printf("balance: %s\n", balance);
    wl_string_free(balance);

    wl_ledger_close(ledger);
    return 0;
}
