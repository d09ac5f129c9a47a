/* ossl.c - OpenSSL loaded on first use (see ossl.h). */
#include "gateway/ossl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIBSSL "libssl.so.3"

/* Written once under `once`, read-only afterwards (the module's only state). */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct pd_ossl table;
static bool loaded;
static char load_error[PD_ERR_MAX];

static void load(void)
{
    void *h = dlopen(LIBSSL, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load OpenSSL (%s): %s", LIBSSL,
                 e ? e : "unknown error");
        return;
    }
    struct pd_ossl t;
    void *sym;
    /* dlsym on the handle also searches libssl's dependencies (libcrypto). A function pointer is
     * copied from the object pointer dlsym returns (POSIX guarantees they convert). */
#define PD_OSSL_RESOLVE(ret, name, params)                                                        \
    sym = dlsym(h, #name);                                                                        \
    if (!sym) {                                                                                   \
        snprintf(load_error, sizeof load_error, "cannot load OpenSSL (%s): no symbol %s", LIBSSL, \
                 #name);                                                                          \
        dlclose(h);                                                                               \
        return;                                                                                   \
    }                                                                                             \
    memcpy(&t.name, &sym, sizeof sym);
    PD_OSSL_FUNCS(PD_OSSL_RESOLVE)
#undef PD_OSSL_RESOLVE
    table = t;
    loaded = true;
}

const struct pd_ossl *pd_ossl_load(struct pd_err *err)
{
    pthread_once(&once, load);
    if (!loaded) {
        pd_err_set(err, "%s", load_error);
        return NULL;
    }
    return &table;
}

const struct pd_ossl *pd_ossl(void)
{
    pthread_once(&once, load);
    if (!loaded) {
        fprintf(stderr, "paddock: OpenSSL used before it was loaded: %s\n", load_error);
        abort();
    }
    return &table;
}
