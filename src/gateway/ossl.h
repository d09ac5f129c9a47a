/*
 * ossl.h - OpenSSL for the gateway's own TLS connections, loaded the first time a policy needs them.
 *
 * Why: most gateways never make a TLS connection themselves (only credential aliases and
 * upgrade_http do), yet merely linking libssl/libcrypto costs ~1.7 MiB of resident pages at
 * startup (the loader relocates libcrypto's large tables). The binary therefore does not link
 * OpenSSL; pd_ossl_load() dlopen()s libssl.so.3 (which brings libcrypto.so.3) and resolves the
 * functions below into one table. OpenSSL's headers are still used for types and constants.
 *
 * Contract: pd_ossl_load() is thread-safe and loads at most once per process; it returns the table,
 * or NULL with `err` saying what is missing (the caller refuses the policy that needed TLS, so a
 * reload keeps the running one). Once it has succeeded, pd_ossl() returns the same table; calling
 * pd_ossl() before a successful load is a bug (it aborts). The library is never unloaded.
 * Loading works after confinement (seccomp allows open/mmap; the files are world-readable).
 * Must never: call an OpenSSL function other than through this table (the link would fail: the
 * binary has no libssl/libcrypto dependency, a test checks its NEEDED entries).
 */
#ifndef PD_GATEWAY_OSSL_H
#define PD_GATEWAY_OSSL_H

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/err.h"

/* X(return type, name, parameter list): every OpenSSL function the gateway calls. */
#define PD_OSSL_FUNCS(X)                                                            \
    X(const SSL_METHOD *, TLS_client_method, (void))                               \
    X(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *))                                 \
    X(long, SSL_CTX_ctrl, (SSL_CTX *, int, long, void *))                           \
    X(void, SSL_CTX_set_verify, (SSL_CTX *, int, SSL_verify_cb))                    \
    X(int, SSL_CTX_load_verify_locations, (SSL_CTX *, const char *, const char *)) \
    X(int, SSL_CTX_set_default_verify_paths, (SSL_CTX *))                           \
    X(int, SSL_CTX_up_ref, (SSL_CTX *))                                             \
    X(void, SSL_CTX_free, (SSL_CTX *))                                              \
    X(SSL *, SSL_new, (SSL_CTX *))                                                  \
    X(void, SSL_free, (SSL *))                                                      \
    X(void, SSL_set_bio, (SSL *, BIO *, BIO *))                                     \
    X(void, SSL_set_connect_state, (SSL *))                                         \
    X(long, SSL_ctrl, (SSL *, int, long, void *))                                   \
    X(int, SSL_set1_host, (SSL *, const char *))                                    \
    X(void, SSL_set_hostflags, (SSL *, unsigned int))                               \
    X(int, SSL_do_handshake, (SSL *))                                               \
    X(int, SSL_read, (SSL *, void *, int))                                          \
    X(int, SSL_write, (SSL *, const void *, int))                                   \
    X(int, SSL_get_error, (const SSL *, int))                                       \
    X(long, SSL_get_verify_result, (const SSL *))                                   \
    X(const char *, X509_verify_cert_error_string, (long))                          \
    X(const BIO_METHOD *, BIO_s_mem, (void))                                        \
    X(BIO *, BIO_new, (const BIO_METHOD *))                                         \
    X(int, BIO_free, (BIO *))                                                       \
    X(int, BIO_read, (BIO *, void *, int))                                          \
    X(int, BIO_write, (BIO *, const void *, int))                                   \
    X(size_t, BIO_ctrl_pending, (BIO *))                                            \
    X(unsigned long, ERR_get_error, (void))                                         \
    X(void, ERR_error_string_n, (unsigned long, char *, size_t))                    \
    X(void, ERR_clear_error, (void))

struct pd_ossl {
#define PD_OSSL_MEMBER(ret, name, params) ret(*name) params;
    PD_OSSL_FUNCS(PD_OSSL_MEMBER)
#undef PD_OSSL_MEMBER
};

const struct pd_ossl *pd_ossl_load(struct pd_err *err);
const struct pd_ossl *pd_ossl(void);

#endif
