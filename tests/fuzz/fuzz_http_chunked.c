/*
 * fuzz_http_chunked.c - libFuzzer target for the chunked decoder (src/http/chunked.c).
 *
 * Input layout: byte 0 bit 0 = decode as a response body (502) or request body (400); bytes 1-2 = a
 * split point (modulo the body length); the rest is the body. The body is decoded three ways -
 * whole, split in two at the chosen point, and one byte per call - each piece in an exact-size heap
 * copy, and the runs must agree on the outcome (DONE / ERROR / NEED_MORE), the decoded bytes, the
 * absolute position of DONE and of the error. abort() on any disagreement or broken invariant.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

struct run {
    int status;
    size_t end; /* absolute position of DONE's end, or of the error */
    int err_status;
    char *out;
    size_t nout;
    uint64_t total;
};

/* Feeds piece in[0..n) (already an exact-size copy) starting at absolute offset base. Returns true
 * when the decoder stopped (DONE or ERROR). */
static bool feed_piece(struct pd_http_chunked *c, const char *in, size_t n, size_t base,
                       struct run *r)
{
    size_t off = 0;
    for (;;) {
        size_t used = (size_t)-1, dlen = 0;
        const char *d = NULL;
        struct pd_http_error e;
        int st = pd_http_chunked_feed(c, in + off, n - off, &used, &d, &dlen, &e);
        check(used <= n - off);
        if (st == PD_HTTP_CHUNK_DATA) {
            check(dlen > 0 && d >= in + off && d + dlen <= in + off + used);
            memcpy(r->out + r->nout, d, dlen);
            r->nout += dlen;
            off += used;
            continue;
        }
        r->status = st;
        if (st == PD_HTTP_CHUNK_NEED_MORE) {
            check(used == n - off);
            return false;
        }
        if (st == PD_HTTP_CHUNK_DONE) {
            r->end = base + off + used;
        } else {
            check(st == PD_HTTP_CHUNK_ERROR && e.reason != NULL && e.offset < n - off);
            check(e.status == c->error_status);
            r->end = base + off + e.offset;
            r->err_status = e.status;
        }
        return true;
    }
}

/* Decodes body[0..n) in pieces cut at the given absolute positions (ascending, last = n). */
static void decode(const char *body, size_t n, bool response, const size_t *cuts, size_t ncuts,
                   struct run *r)
{
    struct pd_http_chunked c;
    pd_http_chunked_init(&c, response);
    memset(r, 0, sizeof *r);
    r->out = malloc(n ? n : 1);
    check(r->out != NULL);
    r->status = PD_HTTP_CHUNK_NEED_MORE;
    size_t pos = 0;
    for (size_t i = 0; i < ncuts && pos < n; i++) {
        size_t len = cuts[i] - pos;
        char *piece = malloc(len ? len : 1);
        check(piece != NULL);
        memcpy(piece, body + pos, len);
        bool stop = feed_piece(&c, piece, len, pos, r);
        free(piece);
        if (stop)
            break;
        pos = cuts[i];
    }
    r->total = c.total;
    check(r->total == r->nout && r->nout <= n);
}

static void same(const struct run *a, const struct run *b)
{
    check(a->status == b->status);
    check(a->nout == b->nout && memcmp(a->out, b->out, a->nout) == 0);
    if (a->status != PD_HTTP_CHUNK_NEED_MORE)
        check(a->end == b->end);
    check(a->err_status == b->err_status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    bool response = data[0] & 1;
    const char *body = (const char *)data + 3;
    size_t n = size - 3;
    size_t split = n ? ((size_t)data[1] << 8 | data[2]) % (n + 1) : 0;

    struct run whole, two, bytes;
    size_t cut_whole[1] = {n};
    size_t cut_two[2] = {split, n};
    decode(body, n, response, cut_whole, 1, &whole);
    decode(body, n, response, cut_two, 2, &two);
    size_t *cut_bytes = malloc((n ? n : 1) * sizeof *cut_bytes);
    check(cut_bytes != NULL);
    for (size_t i = 0; i < n; i++)
        cut_bytes[i] = i + 1;
    decode(body, n, response, cut_bytes, n, &bytes);
    free(cut_bytes);

    same(&whole, &two);
    same(&whole, &bytes);
    if (whole.status == PD_HTTP_CHUNK_DONE)
        check(whole.end <= n && whole.end >= 5);
    free(whole.out);
    free(two.out);
    free(bytes.out);
    return 0;
}
