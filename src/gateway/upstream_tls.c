/*
 * upstream_tls.c - the TLS connections the gateway makes itself (credential aliases and
 * upgrade_http, see docs/policy.md): OpenSSL 3 over memory BIOs on the worker's libuv loop.
 * The certificate is verified against the system trust store or upstream.ca_file, and the host name
 * with SSL_set1_host (the SNI is the same name). Plaintext going up passes through px_tls_write
 * (wiped after encryption: request heads carry the credential); ciphertext coming back through
 * px_tls_read, which hands the plaintext to the ordinary response path (relay.c). OpenSSL is called
 * through the table of ossl.h (loaded when the first policy that needs it is built).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "gateway/ossl.h"
#include "gateway/proxy.h"

#define COMPONENT "gateway"
#define TLS_READ_CHUNK 16384

struct ssl_ctx_st *px_tls_ctx_new(const char *ca_file, struct pd_err *err)
{
    const struct pd_ossl *o = pd_ossl_load(err);
    if (!o)
        return NULL;
    SSL_CTX *ctx = o->SSL_CTX_new(o->TLS_client_method());
    if (!ctx) {
        pd_err_set(err, "cannot create a TLS context");
        return NULL;
    }
    /* SSL_CTX_set_min_proto_version is this macro */
    o->SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    o->SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file && *ca_file ? o->SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                 : o->SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        unsigned long e = o->ERR_get_error();
        char buf[256];
        o->ERR_error_string_n(e, buf, sizeof buf);
        pd_err_set(err, "cannot load the CA certificates %s: %s",
                   ca_file && *ca_file ? ca_file : "of the system trust store", buf);
        o->ERR_clear_error();
        o->SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void px_tls_free(struct proxy_conn *c)
{
    if (c->ssl) {
        pd_ossl()->SSL_free(c->ssl); /* frees both BIOs */
        c->ssl = NULL;
        c->rbio = c->wbio = NULL;
    }
    c->tls_done = false;
}

/* Send what OpenSSL produced to the socket. false when the connection was closed. */
static bool flush(struct proxy_conn *c)
{
    size_t n;
    const struct pd_ossl *o = pd_ossl();
    while (c->ssl && c->up && (n = o->BIO_ctrl_pending(c->wbio)) > 0) {
        char *buf = malloc(n);
        if (!buf) {
            px_close(c);
            return false;
        }
        int r = o->BIO_read(c->wbio, buf, (int)n);
        if (r <= 0) {
            free(buf);
            break;
        }
        if (!px_write(c, (uv_stream_t *)&c->up->tcp, buf, (size_t)r))
            return false;
    }
    return c->state != PX_CLOSED;
}

static void tls_failed(struct proxy_conn *c, const char *what)
{
    const struct pd_ossl *o = pd_ossl();
    char r[PD_GW_REASON_MAX];
    long v = c->ssl ? o->SSL_get_verify_result(c->ssl) : X509_V_OK;
    unsigned long e = o->ERR_get_error();
    char ebuf[256] = "";
    if (e)
        o->ERR_error_string_n(e, ebuf, sizeof ebuf);
    o->ERR_clear_error();
    if (v != X509_V_OK)
        px_reason(r, "TLS to %s (%s) failed: certificate verification: %s",
                  c->d.upstream_host ? c->d.upstream_host : c->host, c->up_text,
                  o->X509_verify_cert_error_string(v));
    else
        px_reason(r, "TLS to %s (%s) failed: %s%s%s",
                  c->d.upstream_host ? c->d.upstream_host : c->host, c->up_text, what,
                  ebuf[0] ? ": " : "", ebuf);
    px_tls_free(c);
    px_deny(c, 502, "upstream_tls_failed", r, NULL, 0, false);
}

static void handshake(struct proxy_conn *c)
{
    const struct pd_ossl *o = pd_ossl();
    o->ERR_clear_error();
    int r = o->SSL_do_handshake(c->ssl);
    if (!flush(c))
        return;
    if (r == 1) {
        c->tls_done = true;
        px_send_request(c);
        return;
    }
    int e = o->SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return;
    tls_failed(c, "handshake");
}

void px_tls_start(struct proxy_conn *c)
{
    const char *host = c->d.upstream_host;
    struct ssl_ctx_st *ctx = pd_gateway_tls_ctx(GW(c));
    if (!ctx) { /* unreachable: a policy that needs TLS is refused without a context */
        tls_failed(c, "no TLS context");
        return;
    }
    const struct pd_ossl *o = pd_ossl(); /* loaded: the context exists */
    c->ssl = o->SSL_new(ctx);
    o->SSL_CTX_free(ctx);
    if (c->ssl) {
        c->rbio = o->BIO_new(o->BIO_s_mem());
        c->wbio = o->BIO_new(o->BIO_s_mem());
    }
    if (!c->ssl || !c->rbio || !c->wbio || !host) {
        if (c->ssl && (!c->rbio || !c->wbio)) {
            o->BIO_free(c->rbio);
            o->BIO_free(c->wbio);
            c->rbio = c->wbio = NULL;
        }
        tls_failed(c, "cannot set up the TLS session");
        return;
    }
    o->SSL_set_bio(c->ssl, c->rbio, c->wbio);
    o->SSL_set_connect_state(c->ssl);
    /* SSL_set_tlsext_host_name is this macro */
    if (o->SSL_ctrl(c->ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)host) !=
            1 ||
        o->SSL_set1_host(c->ssl, host) != 1) {
        tls_failed(c, "cannot set the server name");
        return;
    }
    o->SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    c->state = PX_UPSTREAM_TLS;
    px_arm(c, c->connect_timeout_ms);
    handshake(c);
}

bool px_tls_write(struct proxy_conn *c, char *data, size_t len)
{
    const struct pd_ossl *o = pd_ossl();
    size_t off = 0;
    bool ok = true;
    o->ERR_clear_error();
    while (ok && off < len) {
        int chunk = len - off > (1u << 30) ? (1 << 30) : (int)(len - off);
        int r = o->SSL_write(c->ssl, data + off, chunk);
        if (r <= 0)
            ok = false;
        else
            off += (size_t)r;
    }
    explicit_bzero(data, len);
    free(data);
    if (!ok) {
        pd_log(PD_LOG_INFO, COMPONENT, "upstream_tls_error", PD_LSTR("upstream", c->up_text),
               PD_LSTR("reason", "SSL_write failed"));
        o->ERR_clear_error();
        px_close(c);
        return false;
    }
    return flush(c);
}

void px_tls_read(struct proxy_conn *c, char *buf, size_t n)
{
    const struct pd_ossl *o = pd_ossl();
    struct ssl_st *ssl = c->ssl;
    int w = o->BIO_write(c->rbio, buf, (int)n);
    free(buf);
    if (w != (int)n) {
        px_close(c);
        return;
    }
    if (!c->tls_done) {
        handshake(c);
        if (c->ssl != ssl || !c->tls_done)
            return;
    }
    for (;;) {
        char *out = malloc(TLS_READ_CHUNK);
        if (!out) {
            px_close(c);
            return;
        }
        o->ERR_clear_error();
        int r = o->SSL_read(ssl, out, TLS_READ_CHUNK);
        if (r > 0) {
            px_up_data(c, out, (size_t)r);
            if (c->ssl != ssl || c->state == PX_CLOSED)
                return; /* the response ended (upstream closed) or the connection did */
            continue;
        }
        free(out);
        int e = o->SSL_get_error(ssl, r);
        if (!flush(c))
            return;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return;
        o->ERR_clear_error();
        px_up_eof(c, e == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO);
        return;
    }
}
