/* hosts_file.c - see hosts_file.h. */
#include "net/hosts_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/host.h"

#define ESC(s, n, buf) pd_net_escape((s), (n), PD_NET_ESC_IN, (buf), sizeof(buf))

struct hname {
    uint32_t off; /* into h->text */
    uint32_t len;
    uint32_t hash;
    uint32_t start; /* first address in h->addrs */
    uint32_t n4; /* IPv4 addresses from start */
    uint32_t n6; /* then IPv6 addresses */
};

struct pd_hosts {
    char *text; /* canonical names, each NUL-terminated */
    size_t text_len;
    size_t text_cap;
    struct hname *names;
    size_t n_names;
    size_t names_cap;
    uint32_t *table; /* name index + 1; 0 = empty slot */
    size_t table_cap; /* power of two */
    struct pd_addr *addrs;
    size_t n_addrs;
};

/* One (name, address) occurrence, collected while parsing. */
struct pair {
    uint32_t name;
    uint32_t seq; /* occurrence order in the file */
    struct pd_addr addr;
};

struct parse {
    struct pd_hosts *h;
    struct pair *pairs;
    size_t n_pairs;
    size_t pairs_cap;
    const char *file;
    size_t line;
    struct pd_err *err;
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers                                                                                */

/* Make room for `need` elements of `size` bytes in *p (capacity *cap), doubling. */
static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return false;
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / size)
        return false;
    void *np = realloc(*p, ncap * size);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

static uint32_t hash_name(const char *s, size_t len)
{
    uint64_t x = 0xcbf29ce484222325ull; /* FNV-1a 64 */
    for (size_t i = 0; i < len; i++) {
        x ^= (unsigned char)s[i];
        x *= 0x100000001b3ull;
    }
    return (uint32_t)(x ^ (x >> 32));
}

static bool table_rebuild(struct pd_hosts *h, size_t cap)
{
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    size_t mask = cap - 1;
    for (size_t i = 0; i < h->n_names; i++) {
        size_t s = h->names[i].hash & mask;
        while (t[s])
            s = (s + 1) & mask;
        t[s] = (uint32_t)i + 1;
    }
    free(h->table);
    h->table = t;
    h->table_cap = cap;
    return true;
}

/* Slot of `name`: its index + 1 in *found, or 0 and the empty slot where it would go. */
static size_t table_find(const struct pd_hosts *h, const char *name, size_t len, uint32_t hash,
                         uint32_t *found)
{
    size_t mask = h->table_cap - 1;
    size_t s = hash & mask;
    for (;;) {
        uint32_t v = h->table[s];
        if (v == 0) {
            *found = 0;
            return s;
        }
        const struct hname *n = &h->names[v - 1];
        if (n->hash == hash && n->len == len && memcmp(h->text + n->off, name, len) == 0) {
            *found = v;
            return s;
        }
        s = (s + 1) & mask;
    }
}

/* Index of the canonical name (interned on first sight); false on out-of-memory. */
static bool intern(struct pd_hosts *h, const char *name, size_t len, uint32_t *idx)
{
    uint32_t hash = hash_name(name, len);
    uint32_t found;
    size_t slot = table_find(h, name, len, hash, &found);
    if (found) {
        *idx = found - 1;
        return true;
    }
    /* h->text has len + 1 bytes for an input of len bytes, which always suffices (see the Memory
     * note in the header); checked anyway. */
    if (len + 1 > h->text_cap - h->text_len)
        return false;
    if (!grow((void **)&h->names, &h->names_cap, h->n_names + 1, sizeof *h->names))
        return false;
    struct hname *n = &h->names[h->n_names];
    n->off = (uint32_t)h->text_len;
    n->len = (uint32_t)len;
    n->hash = hash;
    n->start = n->n4 = n->n6 = 0;
    memcpy(h->text + h->text_len, name, len);
    h->text[h->text_len + len] = '\0';
    h->text_len += len + 1;
    *idx = (uint32_t)h->n_names;
    h->n_names++;
    h->table[slot] = *idx + 1;
    if (h->n_names * 2 > h->table_cap && !table_rebuild(h, h->table_cap * 2))
        return false;
    return true;
}

static int cmp_dedup(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    if (x->addr.family != y->addr.family)
        return x->addr.family < y->addr.family ? -1 : 1;
    int c = memcmp(x->addr.bytes, y->addr.bytes, sizeof x->addr.bytes);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* AF_INET (2) sorts before AF_INET6 (10): IPv4 first, then file order. */
static int cmp_final(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    if (x->addr.family != y->addr.family)
        return x->addr.family < y->addr.family ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ------------------------------------------------------------------------------------------ */
/* Lines                                                                                        */

static const char *fname(const struct parse *p)
{
    return p->file ? p->file : "hosts";
}

static bool is_sep(char c)
{
    return c == ' ' || c == '\t';
}

static bool parse_addr(struct parse *p, const char *f, size_t n, struct pd_addr *out)
{
    char esc[PD_NET_ESC_MAX];
    struct pd_err sub = {{0}};
    bool v6 = memchr(f, ':', n) || memchr(f, '[', n) || memchr(f, '%', n);
    if (v6) {
        if (f[0] == '[' || f[n - 1] == ']') {
            pd_err_set(p->err,
                       "%s:%zu: field 1 '%s': brackets are not allowed around an address "
                       "in a hosts file (expected the bare address, e.g. ::1)",
                       fname(p), p->line, ESC(f, n, esc));
            return false;
        }
        if (memchr(f, '%', n)) {
            pd_err_set(p->err,
                       "%s:%zu: field 1 '%s': IPv6 zone ids ('%%' and an interface) are not "
                       "allowed (expected an address without a zone, e.g. fe80::1)",
                       fname(p), p->line, ESC(f, n, esc));
            return false;
        }
        if (!pd_ipv6_parse(f, n, out, &sub)) {
            pd_err_set(p->err, "%s:%zu: field 1 must be an IPv4 or IPv6 address: %s", fname(p),
                       p->line, sub.msg);
            return false;
        }
        return true;
    }
    if (pd_ipv4_parse_strict(f, n, out, &sub))
        return true;
    struct pd_addr lenient;
    if (pd_ipv4_parse(f, n, &lenient, NULL, NULL)) {
        char txt[PD_ADDR_STRLEN];
        pd_addr_format(&lenient, txt, sizeof txt);
        pd_err_set(p->err,
                   "%s:%zu: field 1 '%s' is a legacy IPv4 spelling of %s; write the "
                   "dotted quad %s (a hosts file is configuration: ambiguous spellings are "
                   "refused)",
                   fname(p), p->line, ESC(f, n, esc), txt, txt);
        return false;
    }
    pd_err_set(p->err, "%s:%zu: field 1 must be an IPv4 or IPv6 address: %s", fname(p), p->line,
               sub.msg);
    return false;
}

static bool add_pair(struct parse *p, uint32_t name, const struct pd_addr *a)
{
    if (!grow((void **)&p->pairs, &p->pairs_cap, p->n_pairs + 1, sizeof *p->pairs)) {
        pd_err_set(p->err, "%s:%zu: out of memory", fname(p), p->line);
        return false;
    }
    struct pair *q = &p->pairs[p->n_pairs];
    q->name = name;
    q->seq = (uint32_t)p->n_pairs;
    q->addr = *a;
    p->n_pairs++;
    return true;
}

/* One line without its terminator, known to hold no NUL and no CR, at most LINE_MAX bytes. */
static bool parse_line(struct parse *p, const char *s, size_t n)
{
    const char *hash = memchr(s, '#', n);
    if (hash)
        n = (size_t)(hash - s);
    size_t i = 0;
    unsigned field = 0;
    struct pd_addr addr = {0};
    while (i < n) {
        while (i < n && is_sep(s[i]))
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && !is_sep(s[i]))
            i++;
        const char *f = s + start;
        size_t fl = i - start;
        field++;
        if (field == 1) {
            if (!parse_addr(p, f, fl, &addr))
                return false;
            continue;
        }
        char canon[PD_HOST_MAX + 1];
        size_t cl = 0;
        struct pd_err sub = {{0}};
        if (!pd_host_canon_name(f, fl, canon, &cl, &sub)) {
            pd_err_set(p->err, "%s:%zu: field %u must be a host name: %s", fname(p), p->line, field,
                       sub.msg);
            return false;
        }
        uint32_t idx;
        if (!intern(p->h, canon, cl, &idx)) {
            pd_err_set(p->err, "%s:%zu: out of memory", fname(p), p->line);
            return false;
        }
        if (!add_pair(p, idx, &addr))
            return false;
    }
    if (field == 1) {
        char txt[PD_ADDR_STRLEN];
        pd_addr_format(&addr, txt, sizeof txt);
        pd_err_set(p->err,
                   "%s:%zu: address %s has no name (expected at least one host name after "
                   "the address)",
                   fname(p), p->line, txt);
        return false;
    }
    return true;
}

/* Sort the pairs, drop duplicates, lay out each name's addresses (IPv4 then IPv6, file order). */
static bool finish(struct parse *p)
{
    struct pd_hosts *h = p->h;
    size_t n = p->n_pairs;
    if (n == 0)
        return true;
    qsort(p->pairs, n, sizeof *p->pairs, cmp_dedup);
    size_t w = 1;
    for (size_t r = 1; r < n; r++) {
        const struct pair *last = &p->pairs[w - 1];
        const struct pair *cur = &p->pairs[r];
        if (cur->name == last->name && pd_addr_equal(&cur->addr, &last->addr))
            continue; /* same name and address: keep the earlier (lower seq) one */
        p->pairs[w++] = *cur;
    }
    n = w;
    qsort(p->pairs, n, sizeof *p->pairs, cmp_final);
    h->addrs = malloc(n * sizeof *h->addrs);
    if (!h->addrs) {
        pd_err_set(p->err, "%s: out of memory", fname(p));
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        const struct pair *q = &p->pairs[i];
        struct hname *nm = &h->names[q->name];
        if (nm->n4 + nm->n6 == 0)
            nm->start = (uint32_t)i;
        if (q->addr.family == AF_INET)
            nm->n4++;
        else
            nm->n6++;
        h->addrs[i] = q->addr;
    }
    h->n_addrs = n;
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* API                                                                                          */

struct pd_hosts *pd_hosts_parse(const char *text, size_t len, const char *filename,
                                struct pd_err *err)
{
    if (!text)
        len = 0;
    const char *fn = filename ? filename : "hosts";
    if (len > PD_HOSTS_MAX_BYTES) {
        pd_err_set(err, "%s: file is too large (%zu bytes; the limit is %u bytes)", fn, len,
                   PD_HOSTS_MAX_BYTES);
        return NULL;
    }
    struct pd_hosts *h = calloc(1, sizeof *h);
    struct parse p = {.h = h, .file = filename, .line = 0, .err = err};
    if (!h)
        goto oom;
    h->text = malloc(len + 1);
    h->table = calloc(16, sizeof *h->table);
    if (!h->text || !h->table)
        goto oom;
    h->text_cap = len + 1;
    h->table_cap = 16;

    size_t pos = 0;
    while (pos < len) {
        p.line++;
        const char *s = text + pos;
        size_t rest = len - pos;
        const char *lf = memchr(s, '\n', rest);
        size_t n = lf ? (size_t)(lf - s) : rest;
        pos += lf ? n + 1 : n;
        if (n > 0 && s[n - 1] == '\r' && lf)
            n--; /* CRLF */
        const char *nul = memchr(s, '\0', n);
        if (nul) {
            pd_err_set(err, "%s:%zu: NUL byte at column %zu (expected a text file)", fn, p.line,
                       (size_t)(nul - s) + 1);
            goto fail;
        }
        const char *cr = memchr(s, '\r', n);
        if (cr) {
            pd_err_set(err,
                       "%s:%zu: carriage return at column %zu is not followed by a line feed "
                       "(expected LF or CRLF line endings)",
                       fn, p.line, (size_t)(cr - s) + 1);
            goto fail;
        }
        if (n > PD_HOSTS_LINE_MAX) {
            pd_err_set(err, "%s:%zu: line is %zu bytes long, more than the %u allowed", fn, p.line,
                       n, PD_HOSTS_LINE_MAX);
            goto fail;
        }
        if (!parse_line(&p, s, n))
            goto fail;
    }
    if (!finish(&p))
        goto fail;
    free(p.pairs);
    /* Shrink the name buffer to what was used (never fails to keep the old block). */
    char *t = realloc(h->text, h->text_len ? h->text_len : 1);
    if (t) {
        h->text = t;
        h->text_cap = h->text_len ? h->text_len : 1;
    }
    return h;
oom:
    pd_err_set(err, "%s: out of memory", fn);
fail:
    free(p.pairs);
    pd_hosts_free(h);
    return NULL;
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISCHR(m))
        return "a character device";
    if (S_ISBLK(m))
        return "a block device";
    if (S_ISSOCK(m))
        return "a socket";
    return "not a regular file";
}

struct pd_hosts *pd_hosts_load(const char *path, struct pd_err *err)
{
    char eb[128];
    if (!path || !*path) {
        pd_err_set(err, "hosts file: no file name given");
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        pd_err_set(err, "%s: cannot open: %s", path, strerror_r(errno, eb, sizeof eb));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        pd_err_set(err, "%s: cannot stat: %s", path, strerror_r(errno, eb, sizeof eb));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        pd_err_set(err, "%s: not a regular file (%s)", path, file_kind(st.st_mode));
        close(fd);
        return NULL;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > PD_HOSTS_MAX_BYTES) {
        pd_err_set(err, "%s: file is too large (%lld bytes; the limit is %u bytes)", path,
                   (long long)st.st_size, PD_HOSTS_MAX_BYTES);
        close(fd);
        return NULL;
    }
    /* Read up to the limit + 1 so a file that grows after fstat is still caught. */
    size_t cap = (size_t)st.st_size + 1;
    char *buf = malloc(cap);
    size_t len = 0;
    if (!buf) {
        pd_err_set(err, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        if (len == cap) {
            if (cap > PD_HOSTS_MAX_BYTES) {
                pd_err_set(err, "%s: file is too large (more than %u bytes)", path,
                           PD_HOSTS_MAX_BYTES);
                goto fail;
            }
            size_t ncap =
                cap * 2 > (size_t)PD_HOSTS_MAX_BYTES + 1 ? (size_t)PD_HOSTS_MAX_BYTES + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                pd_err_set(err, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            pd_err_set(err, "%s: cannot read: %s", path, strerror_r(errno, eb, sizeof eb));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    struct pd_hosts *h = pd_hosts_parse(buf, len, path, err);
    free(buf);
    return h;
fail:
    close(fd);
    free(buf);
    return NULL;
}

void pd_hosts_free(struct pd_hosts *h)
{
    if (!h)
        return;
    free(h->text);
    free(h->names);
    free(h->table);
    free(h->addrs);
    free(h);
}

size_t pd_hosts_count(const struct pd_hosts *h)
{
    return h ? h->n_names : 0;
}

size_t pd_hosts_address_count(const struct pd_hosts *h)
{
    return h ? h->n_addrs : 0;
}

const char *pd_hosts_name(const struct pd_hosts *h, size_t i, size_t *len)
{
    if (len)
        *len = 0;
    if (!h || i >= h->n_names)
        return NULL;
    if (len)
        *len = h->names[i].len;
    return h->text + h->names[i].off;
}

size_t pd_hosts_lookup(const struct pd_hosts *h, const char *name, size_t len, int family,
                       const struct pd_addr **out)
{
    if (out)
        *out = NULL;
    if (!h || !name || len == 0 || len > PD_HOST_MAX || h->n_names == 0)
        return 0;
    if (family != 0 && family != AF_INET && family != AF_INET6)
        return 0;
    uint32_t found;
    (void)table_find(h, name, len, hash_name(name, len), &found);
    if (!found)
        return 0;
    const struct hname *n = &h->names[found - 1];
    size_t first = n->start, count;
    if (family == AF_INET) {
        count = n->n4;
    } else if (family == AF_INET6) {
        first += n->n4;
        count = n->n6;
    } else {
        count = (size_t)n->n4 + n->n6;
    }
    if (count && out)
        *out = &h->addrs[first];
    return count;
}
