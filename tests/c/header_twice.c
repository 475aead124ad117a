/*
 * The header compiles on its own (C99 and C++) and survives a double include.
 */
#include "walletlog.h"
#include "walletlog.h"

int main(void) {
    wl_status status = WL_OK;
    wl_ledger *ledger = 0;
    (void)ledger;
    return (int)status;
}
