/*
 * A tiny test harness for the C tests: CHECK counts, the closing line says
 * "N passed, N failed", and the exit status is 1 when anything failed.
 */
#ifndef WALLETLOG_TEST_CHECK_H
#define WALLETLOG_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walletlog.h"

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (cond) {                                                           \
            checks_passed++;                                                  \
        } else {                                                              \
            checks_failed++;                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                   \
        }                                                                     \
    } while (0)

/* A call that must return `expected`; on a mismatch, prints the last error. */
#define CHECK_STATUS(call, expected)                                          \
    do {                                                                      \
        wl_status check_got_ = (call);                                        \
        if (check_got_ == (expected)) {                                       \
            checks_passed++;                                                  \
        } else {                                                              \
            checks_failed++;                                                  \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s: %s\n",       \
                    __FILE__, __LINE__, #call, wl_status_name(check_got_),    \
                    wl_status_name(expected), wl_last_error_message());       \
        }                                                                     \
    } while (0)

/* `haystack` is a string that contains `needle`. */
#define CHECK_CONTAINS(haystack, needle)                                      \
    do {                                                                      \
        const char *check_h_ = (haystack);                                    \
        if (check_h_ != NULL && strstr(check_h_, (needle)) != NULL) {         \
            checks_passed++;                                                  \
        } else {                                                              \
            checks_failed++;                                                  \
            fprintf(stderr, "%s:%d: expected %s to contain %s, got: %s\n",    \
                    __FILE__, __LINE__, #haystack, (needle),                  \
                    check_h_ ? check_h_ : "(NULL)");                          \
        }                                                                     \
    } while (0)

/* Counts the occurrences of `needle` in `haystack`. */
static inline int count_of(const char *haystack, const char *needle) {
    int n = 0;
    size_t len = strlen(needle);
    if (haystack == NULL || len == 0) return 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + len, needle)) n++;
    return n;
}

/* Reads a whole file; the caller frees the buffer. Exits on failure. */
static inline unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    buf[size] = 0;
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* Prints the closing line; returns the process exit status. */
static inline int check_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
