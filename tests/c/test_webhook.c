/*
 * Webhooks from C through real plugins built by this repository: the
 * Paystack plugin on Paystack's own fixture payload with a valid signature,
 * and the hostile plugin's attacks, each a clean WL_ERR_PLUGIN naming what
 * went wrong (invalid output names the event's field), storing nothing and
 * leaving the ledger working.
 *
 * Usage: test_webhook SCRATCH_DIR PLUGINS_DIR FIXTURES_DIR
 */
#include <stdint.h>

#include "check.h"

#define SENTINEL ((char *)(uintptr_t)0x5e47)

/*
 * HMAC-SHA512 of tests/fixtures/webhooks/paystack/charge.success.json (1654
 * bytes, as committed) under the key "sk_test_c", in lower-case hex. Computed with
 *   python3 -c 'import hmac, hashlib; print(hmac.new(b"sk_test_c",
 *     open("charge.success.json", "rb").read(), hashlib.sha512).hexdigest())'
 */
static const char *PAYSTACK_SIGNATURE =
    "a7235a91ce61d9af422482fe4dd72b206919f0b1fac2e9246b6333440bbcf1b0"
    "84552b0ff64d6838111507f464e4d79a349534f279f4ee086b4bfbb0a55c10ef";

static int stored_events(wl_ledger *led) {
    char *out = NULL;
    if (wl_ledger_changes_since_json(led, 0, 1000, &out) != WL_OK) return -1;
    int n = count_of(out, "\"event_id\"");
    wl_string_free(out);
    return n;
}

static void test_paystack(wl_ledger *led, const char *plugins, const char *fixtures) {
    char path[4096];
    char *out = NULL;
    snprintf(path, sizeof path, "%s/paystack.wasm", plugins);
    CHECK_STATUS(wl_ledger_install_plugin_file(led, path, &out), WL_OK);
    CHECK_CONTAINS(out, "\"provider\":\"paystack\"");
    CHECK_CONTAINS(out, "\"signature\":\"hmac\"");
    wl_string_free(out);

    size_t len = 0;
    snprintf(path, sizeof path, "%s/paystack/charge.success.json", fixtures);
    unsigned char *body = read_file(path, &len);
    CHECK(len == 1654);

    char headers[512];
    snprintf(headers, sizeof headers,
             "[[\"content-type\",\"application/json\"],[\"x-paystack-signature\",\"%s\"]]",
             PAYSTACK_SIGNATURE);

    /* No secret set yet: refused before the plugin runs. */
    out = SENTINEL;
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "paystack", headers, body, len, NULL, &out),
                 WL_ERR_SIGNATURE);
    CHECK(out == SENTINEL);
    CHECK(stored_events(led) == 0);

    CHECK_STATUS(wl_ledger_set_webhook_secret(led, "paystack", "sk_test_c"), WL_OK);
    out = NULL;
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "paystack", headers, body, len,
                                          "https://example.com/hooks/paystack", &out),
                 WL_OK);
    CHECK(count_of(out, "\"created\":true") == 1);
    CHECK_CONTAINS(out, "\"amount\":\"100\"");
    CHECK_CONTAINS(out, "\"currency\":\"NGN\"");
    CHECK_CONTAINS(out, "\"wallet_id\":\"CUS_qo38as2hpsgk2r0\"");
    CHECK_CONTAINS(out, "\"event_type\":\"deposit\"");
    wl_string_free(out);

    /* The provider retries: a duplicate, nothing new stored. */
    out = NULL;
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "paystack", headers, body, len, NULL, &out), WL_OK);
    CHECK(count_of(out, "\"duplicate\":true") == 1);
    wl_string_free(out);
    CHECK(stored_events(led) == 1);

    /* A tampered body, then a wrong signature: refused, nothing stored. */
    body[len / 2] ^= 1;
    out = SENTINEL;
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "paystack", headers, body, len, NULL, &out),
                 WL_ERR_SIGNATURE);
    body[len / 2] ^= 1;
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "paystack",
                                          "{\"x-paystack-signature\":\"00ff\"}", body, len, NULL,
                                          &out),
                 WL_ERR_SIGNATURE);
    CHECK(strstr(wl_last_error_message(), "sk_test_c") == NULL);
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "paystack", "{}", body, len, NULL, &out),
                 WL_ERR_SIGNATURE);
    CHECK(out == SENTINEL);
    CHECK(stored_events(led) == 1);
    free(body);

    /* The audit record names the plugin as the actor. */
    out = NULL;
    CHECK_STATUS(wl_ledger_audit_log_json(led, 0, 10, &out), WL_OK);
    CHECK_CONTAINS(out, "\"actor\":\"plugin:paystack@");
    CHECK_CONTAINS(out, "\"body_sha256\":\"");
    wl_string_free(out);
}

static void test_hostile(wl_ledger *led, const char *plugins) {
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/hostile.wasm", plugins);
    unsigned char *wasm = read_file(path, &len);
    /* A plugin that declares no signature scheme is refused until unsigned
       webhooks are allowed for its provider. */
    char *out = SENTINEL;
    CHECK_STATUS(wl_ledger_install_plugin(led, wasm, len, &out), WL_ERR_PLUGIN);
    CHECK(out == SENTINEL);
    CHECK_CONTAINS(wl_last_error_message(), "or allow unsigned webhooks");
    CHECK_STATUS(wl_ledger_allow_unsigned(led, "hostile"), WL_OK);
    out = NULL;
    CHECK_STATUS(wl_ledger_install_plugin(led, wasm, len, &out), WL_OK);
    CHECK_CONTAINS(out, "\"provider\":\"hostile\"");
    CHECK_CONTAINS(out, "\"signature\":\"none\"");
    wl_string_free(out);
    free(wasm);

    struct {
        const char *attack;
        wl_status status;
        const char *says;
    } attacks[] = {
        {"loop", WL_ERR_PLUGIN, "\"code\":\"out_of_fuel\""},
        {"grow", WL_ERR_PLUGIN, "\"code\":\"out_of_memory\""},
        {"trap", WL_ERR_PLUGIN, "\"code\":\"trap\""},
        {"many", WL_ERR_PLUGIN, "\"code\":\"output_too_large\""},
        {"huge", WL_ERR_PLUGIN, "\"code\":\"output_too_large\""},
        {"utf8", WL_ERR_PLUGIN, "invalid utf-8"},
        {"negative", WL_ERR_PLUGIN, "invalid amount"},
        {"currency", WL_ERR_PLUGIN, "invalid currency"},
        {"timestamp", WL_ERR_PLUGIN, "invalid occurred_at"},
        {"metadata", WL_ERR_PLUGIN, "invalid metadata"},
        {"nonsense", WL_ERR_PLUGIN, "\"code\":\"unsupported\""},
    };
    int before = stored_events(led);
    for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
        out = SENTINEL;
        const char *a = attacks[i].attack;
        CHECK_STATUS(wl_ledger_ingest_webhook(led, "hostile", "{}", (const uint8_t *)a, strlen(a),
                                              NULL, &out),
                     attacks[i].status);
        CHECK(out == SENTINEL);
        char *err = NULL;
        CHECK_STATUS(wl_last_error_json(&err), WL_OK);
        CHECK_CONTAINS(err, attacks[i].says);
        if (strstr(err ? err : "", attacks[i].says) == NULL) fprintf(stderr, "  attack %s\n", a);
        wl_string_free(err);
    }
    CHECK(stored_events(led) == before);

    /* The next webhook works. */
    out = NULL;
    CHECK_STATUS(wl_ledger_ingest_webhook(led, "hostile", "{}", (const uint8_t *)"ok", 2, NULL, &out),
                 WL_OK);
    CHECK(count_of(out, "\"created\":true") == 1);
    wl_string_free(out);
    CHECK(stored_events(led) == before + 1);

    /* A core module is refused at install. */
    const unsigned char core_module[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00};
    out = SENTINEL;
    CHECK_STATUS(wl_ledger_install_plugin(led, core_module, sizeof core_module, &out),
                 WL_ERR_PLUGIN);
    CHECK(out == SENTINEL);
    char *err = NULL;
    CHECK_STATUS(wl_last_error_json(&err), WL_OK);
    CHECK_CONTAINS(err, "\"code\":\"refused\"");
    wl_string_free(err);

    out = NULL;
    CHECK_STATUS(wl_ledger_verify_audit_json(led, &out), WL_OK);
    CHECK_CONTAINS(out, "\"ok\":true");
    wl_string_free(out);
}

/*
 * The inbox after the two tests above: the Paystack delivery ingested, the
 * hostile plugin's refused ones kept with their verdicts; a replay of the
 * dead letters under the same plugin still fails and changes nothing.
 */
static void test_inbox(wl_ledger *led) {
    char *out = NULL;
    CHECK_STATUS(wl_ledger_inbox_json(led, "{\"provider\":\"paystack\"}", &out), WL_OK);
    CHECK(count_of(out, "\"delivery_id\"") == 1);
    CHECK_CONTAINS(out, "\"verdict\":\"ingested\"");
    CHECK_CONTAINS(out, "\"attempts\":2"); /* the provider's retry */
    CHECK_CONTAINS(out, "\"next_cursor\":null");
    wl_string_free(out);

    out = NULL;
    CHECK_STATUS(wl_ledger_inbox_json(led, "{\"verdict\":\"plugin_failed\",\"limit\":1}", &out),
                 WL_OK);
    CHECK(count_of(out, "\"delivery_id\"") == 1);
    CHECK(strstr(out, "\"next_cursor\":null") == NULL); /* loop, grow and trap */
    /* Its id, to fetch it in full. */
    char id[37] = {0};
    const char *at = strstr(out, "\"delivery_id\":\"");
    CHECK(at != NULL);
    if (at) memcpy(id, at + strlen("\"delivery_id\":\""), 36);
    wl_string_free(out);

    out = NULL;
    CHECK_STATUS(wl_ledger_inbox_delivery_json(led, id, &out), WL_OK);
    CHECK_CONTAINS(out, "\"body_base64\":\"");
    CHECK_CONTAINS(out, "\"attempt_history\":[{");
    CHECK_CONTAINS(out, "\"kind\":\"receipt\"");
    wl_string_free(out);
    out = SENTINEL;
    CHECK_STATUS(wl_ledger_inbox_delivery_json(led, "00000000-0000-4000-8000-000000000000", &out),
                 WL_ERR_NOT_FOUND);
    CHECK_STATUS(wl_ledger_inbox_delivery_json(led, "nope", &out), WL_ERR_VALIDATION);
    CHECK_CONTAINS(wl_last_error_message(), "delivery_id");
    CHECK(out == SENTINEL);

    int before = stored_events(led);
    out = NULL;
    CHECK_STATUS(wl_ledger_replay_json(led, "{\"provider\":\"hostile\",\"verdict\":\"unsupported\"}",
                                       &out),
                 WL_OK);
    CHECK_CONTAINS(out, "\"replayed\":1");
    CHECK_CONTAINS(out, "\"created\":0");
    CHECK_CONTAINS(out, "\"still_failing\":1");
    wl_string_free(out);
    CHECK(stored_events(led) == before);
    out = SENTINEL;
    CHECK_STATUS(wl_ledger_replay_json(led, "{\"delivery_ids\":[\"x\"]}", &out),
                 WL_ERR_VALIDATION);
    CHECK_STATUS(wl_ledger_replay_json(led, "{\"verdicts\":[]}", &out), WL_ERR_VALIDATION);
    CHECK(out == SENTINEL);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SCRATCH_DIR PLUGINS_DIR FIXTURES_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/webhook.db", argv[1]);
    remove(path);
    /* Generous wall-clock deadline: under valgrind, plugins run ~50x slower;
       fuel, memory and output limits stay the defaults. */
    wl_ledger *led = NULL;
    CHECK_STATUS(wl_ledger_open(path, "{\"plugin_limits\":{\"call_timeout_ms\":120000}}", &led),
                 WL_OK);
    if (!led) return check_finish("test_webhook");
    test_paystack(led, argv[2], argv[3]);
    test_hostile(led, argv[2]);
    test_inbox(led);
    wl_ledger_close(led);
    return check_finish("test_webhook");
}
