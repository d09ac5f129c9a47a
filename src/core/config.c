/* config.c - see config.h: the document, its location table, file reading, format choice,
 * accessors. */
#include "core/config.h"
#include "core/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define NO_KEY UINT32_MAX

/* One recorded node: which slot of which parent it fills, and where it (and its key) appeared. */
struct cfg_entry {
    const json_t *parent;
    const json_t *node;
    uint32_t key_off; /* into doc->keys, NO_KEY for array elements and the root */
    uint32_t key_len;
    uint32_t index;
    struct pd_config_loc loc;
    struct pd_config_loc key_loc;
};

struct pd_config_doc {
    char *name;
    json_t *root;
    enum pd_config_format format;
    struct pd_config_loc root_loc;
    struct cfg_entry *ents; /* in parse order */
    uint32_t n_ents;
    uint32_t cap_ents;
    char *keys; /* key bytes of all members, back to back (not terminated) */
    size_t keys_len;
    size_t keys_cap;
    /* Built after parsing: open addressing, >= 2 * n_ents slots, entry index + 1 (0 = empty). */
    uint32_t *by_node; /* node pointer -> entry (not for the shared true/false/null) */
    uint32_t *by_child; /* (parent, key or index) -> entry */
    size_t n_slots;
};

/* ---- memory: everything through jansson's allocator so that tests can inject failures ---- */

void *pd_cfg_alloc(size_t n)
{
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    if (n == 0 || !m)
        return NULL;
    return m(n);
}

void pd_cfg_free(void *p)
{
    if (!p)
        return;
    json_malloc_t m;
    json_free_t f;
    json_get_alloc_funcs(&m, &f);
    if (f)
        f(p);
}

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t child_hash(const json_t *parent, const char *key, size_t keylen, bool has_key,
                           uint32_t index)
{
    uint64_t h = mix64((uint64_t)(uintptr_t)parent);
    if (has_key)
        return h ^ mix64(hash_bytes(key, keylen));
    return h ^ mix64((uint64_t)index + 0x9e3779b97f4a7c15ULL);
}

static bool is_shared(const json_t *node)
{
    return json_is_true(node) || json_is_false(node) || json_is_null(node);
}

static void index_insert(uint32_t *slots, size_t n_slots, uint64_t h, uint32_t value)
{
    size_t mask = n_slots - 1;
    size_t i = (size_t)h & mask;
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = value;
}

static void index_entry(struct pd_config_doc *doc, uint32_t idx)
{
    const struct cfg_entry *e = &doc->ents[idx];
    if (e->node && !is_shared(e->node))
        index_insert(doc->by_node, doc->n_slots, mix64((uint64_t)(uintptr_t)e->node), idx + 1);
    bool has_key = e->key_off != NO_KEY;
    /* Only empty keys seen: no key bytes were ever stored, and NULL + 0 is undefined behaviour. */
    const char *key = !has_key ? NULL : doc->keys ? doc->keys + e->key_off : "";
    uint64_t h = child_hash(e->parent, key, e->key_len, has_key, e->index);
    index_insert(doc->by_child, doc->n_slots, h, idx + 1);
}

/* Build both lookup tables once the whole tree is read (no rehashing while parsing). */
static int build_index(struct pd_config_doc *doc)
{
    size_t nslots = 16;
    while (nslots < (size_t)doc->n_ents * 2)
        nslots *= 2;
    doc->by_node = pd_cfg_alloc(sizeof *doc->by_node * nslots);
    doc->by_child = pd_cfg_alloc(sizeof *doc->by_child * nslots);
    if (!doc->by_node || !doc->by_child)
        return -1; /* freed with the doc */
    memset(doc->by_node, 0, sizeof *doc->by_node * nslots);
    memset(doc->by_child, 0, sizeof *doc->by_child * nslots);
    doc->n_slots = nslots;
    for (uint32_t i = 0; i < doc->n_ents; i++)
        index_entry(doc, i);
    return 0;
}

static int grow_entries(struct pd_config_doc *doc)
{
    uint32_t ncap = doc->cap_ents ? doc->cap_ents * 2 : 64;
    if (ncap > (UINT32_MAX / 4) || ncap <= doc->cap_ents)
        return -1;
    struct cfg_entry *ents = pd_cfg_alloc(sizeof *ents * ncap);
    if (!ents)
        return -1;
    if (doc->n_ents)
        memcpy(ents, doc->ents, sizeof *ents * doc->n_ents);
    pd_cfg_free(doc->ents);
    doc->ents = ents;
    doc->cap_ents = ncap;
    return 0;
}

static int append_key(struct pd_config_doc *doc, const char *key, size_t keylen, uint32_t *off)
{
    if (keylen > PD_CONFIG_MAX_BYTES || doc->keys_len + keylen > (size_t)UINT32_MAX - 1)
        return -1;
    if (doc->keys_len + keylen > doc->keys_cap) {
        size_t ncap = doc->keys_cap ? doc->keys_cap : 1024;
        while (ncap < doc->keys_len + keylen)
            ncap *= 2;
        char *nk = pd_cfg_alloc(ncap);
        if (!nk)
            return -1;
        if (doc->keys_len)
            memcpy(nk, doc->keys, doc->keys_len);
        pd_cfg_free(doc->keys);
        doc->keys = nk;
        doc->keys_cap = ncap;
    }
    if (keylen)
        memcpy(doc->keys + doc->keys_len, key, keylen);
    *off = (uint32_t)doc->keys_len;
    doc->keys_len += keylen;
    return 0;
}

int pd_cfg_record(struct pd_config_doc *doc, const json_t *parent, const char *key, size_t keylen,
                  size_t index, const json_t *node, struct pd_config_loc loc,
                  struct pd_config_loc key_loc)
{
    if (index > UINT32_MAX - 1)
        return -1;
    if (doc->n_ents == doc->cap_ents && grow_entries(doc) != 0)
        return -1;
    uint32_t off = NO_KEY;
    if (key && append_key(doc, key, keylen, &off) != 0)
        return -1;
    struct cfg_entry *e = &doc->ents[doc->n_ents];
    e->parent = parent;
    e->node = node;
    e->key_off = off;
    e->key_len = key ? (uint32_t)keylen : 0;
    e->index = key ? 0 : (uint32_t)index;
    e->loc = loc;
    e->key_loc = key ? key_loc : (struct pd_config_loc){0, 0};
    doc->n_ents++;
    return 0;
}

static const struct cfg_entry *find_child(const struct pd_config_doc *doc, const json_t *parent,
                                          const char *key, size_t keylen, bool has_key,
                                          size_t index)
{
    if (!doc || doc->n_slots == 0 || (!has_key && index > UINT32_MAX - 1))
        return NULL;
    size_t mask = doc->n_slots - 1;
    size_t i = (size_t)child_hash(parent, key, keylen, has_key, (uint32_t)index) & mask;
    for (; doc->by_child[i] != 0; i = (i + 1) & mask) {
        const struct cfg_entry *e = &doc->ents[doc->by_child[i] - 1];
        if (e->parent != parent)
            continue;
        if (has_key) {
            if (e->key_off != NO_KEY && e->key_len == keylen &&
                (keylen == 0 || memcmp(doc->keys + e->key_off, key, keylen) == 0))
                return e;
        } else if (e->key_off == NO_KEY && e->index == index) {
            return e;
        }
    }
    return NULL;
}

bool pd_cfg_find_key(const struct pd_config_doc *doc, const json_t *parent, const char *key,
                     size_t keylen, struct pd_config_loc *key_loc)
{
    /* While parsing, jansson's own table answers; the entry is searched only for a duplicate. */
    if (!key)
        key = "";
    if (!json_object_getn(parent, key, keylen))
        return false;
    if (key_loc)
        *key_loc = (struct pd_config_loc){0, 0};
    for (uint32_t i = doc->n_ents; i-- > 0;) {
        const struct cfg_entry *e = &doc->ents[i];
        if (e->parent == parent && e->key_off != NO_KEY && e->key_len == keylen &&
            (keylen == 0 || memcmp(doc->keys + e->key_off, key, keylen) == 0)) {
            if (key_loc)
                *key_loc = e->key_loc;
            break;
        }
    }
    return true;
}

void pd_cfg_set_root(struct pd_config_doc *doc, json_t *root, struct pd_config_loc loc)
{
    doc->root = root;
    doc->root_loc = loc;
}

/* ---- small shared helpers ---- */

bool pd_cfg_utf8_valid(const char *str, size_t n)
{
    return pd_utf8_valid(str, n);
}

int pd_cfg_strtod(const char *s, size_t n, double *out, bool *oom)
{
    char small[128];
    char *tmp = small;
    *oom = false;
    if (n >= sizeof small) {
        tmp = pd_cfg_alloc(n + 1);
        if (!tmp) {
            *oom = true;
            return -1;
        }
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    locale_t c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_loc == (locale_t)0) {
        if (tmp != small)
            pd_cfg_free(tmp);
        *oom = true;
        return -1;
    }
    double d = strtod_l(tmp, NULL, c_loc);
    freelocale(c_loc);
    if (tmp != small)
        pd_cfg_free(tmp);
    if (!isfinite(d)) /* overflow; NaN cannot come from a checked decimal */
        return -1;
    *out = d;
    return 0;
}

const char *pd_cfg_quote(const char *s, size_t n, size_t max_chars, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    if (!buf || cap == 0)
        return "";
    size_t o = 0;
    size_t chars = 0;
    size_t i = 0;
    buf[0] = '\0';
    if (!s)
        return buf;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        size_t tl = 0;
        size_t adv = 1;
        if (chars == max_chars)
            break;
        if (c == '\\' || c == '"') {
            tmp[tl++] = '\\';
            tmp[tl++] = (char)c;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            tmp[tl++] = '\\';
            tmp[tl++] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
        } else if (c < 0x20 || c == 0x7f) {
            tmp[tl++] = '\\';
            tmp[tl++] = 'x';
            tmp[tl++] = hex[c >> 4];
            tmp[tl++] = hex[c & 15];
        } else if (c < 0x80) {
            tmp[tl++] = (char)c;
        } else {
            /* Keep a whole UTF-8 sequence when it is valid, else show the byte. */
            size_t w = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (w > 1 && n - i >= w && pd_cfg_utf8_valid(s + i, w)) {
                uint32_t cp = c & (0x7Fu >> w);
                for (size_t k = 1; k < w; k++)
                    cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
                adv = w;
                /* C1 controls, line/paragraph separators, bidi controls and the BOM are shown
                 * escaped so that a message cannot reorder or hide what the terminal shows. */
                if (cp < 0xA0 || (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) ||
                    cp == 0x200E || cp == 0x200F || cp == 0xFEFF) {
                    tmp[tl++] = '\\';
                    tmp[tl++] = 'u';
                    tmp[tl++] = hex[(cp >> 12) & 15];
                    tmp[tl++] = hex[(cp >> 8) & 15];
                    tmp[tl++] = hex[(cp >> 4) & 15];
                    tmp[tl++] = hex[cp & 15];
                } else {
                    memcpy(tmp, s + i, w);
                    tl = w;
                }
            } else {
                tmp[tl++] = '\\';
                tmp[tl++] = 'x';
                tmp[tl++] = hex[c >> 4];
                tmp[tl++] = hex[c & 15];
            }
        }
        if (o + tl + 4 > cap) /* room for "..." and the terminator */
            break;
        memcpy(buf + o, tmp, tl);
        o += tl;
        i += adv;
        chars++;
    }
    if (i < n && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- loading ---- */

static char *dup_name(const char *s)
{
    size_t n = strlen(s);
    char *d = pd_cfg_alloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

static enum pd_config_format by_extension(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    if (!dot)
        return PD_CONFIG_AUTO;
    if (strcasecmp(dot, ".yaml") == 0 || strcasecmp(dot, ".yml") == 0)
        return PD_CONFIG_YAML;
    if (strcasecmp(dot, ".json") == 0)
        return PD_CONFIG_JSON;
    return PD_CONFIG_AUTO;
}

static enum pd_config_format sniff(const char *buf, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i < len && (buf[i] == '{' || buf[i] == '['))
        return PD_CONFIG_JSON;
    return PD_CONFIG_YAML;
}

struct pd_config_doc *pd_config_load_buffer(const char *name, const char *buf, size_t len,
                                            enum pd_config_format format, struct pd_err *err)
{
    if (!name)
        name = "<input>";
    if (!buf && len > 0) {
        pd_err_set(err, "%s: no input buffer", name);
        return NULL;
    }
    if (len > PD_CONFIG_MAX_BYTES) {
        pd_err_set(err, "%s: input is too large (%zu bytes; the limit is %u bytes)", name, len,
                   PD_CONFIG_MAX_BYTES);
        return NULL;
    }
    if (format != PD_CONFIG_YAML && format != PD_CONFIG_JSON) {
        format = by_extension(name);
        if (format == PD_CONFIG_AUTO)
            format = sniff(buf ? buf : "", len);
    }
    struct pd_config_doc *doc = pd_cfg_alloc(sizeof *doc);
    if (!doc) {
        pd_err_set(err, "%s: out of memory", name);
        return NULL;
    }
    memset(doc, 0, sizeof *doc);
    doc->format = format;
    doc->name = dup_name(name);
    if (!doc->name) {
        pd_cfg_free(doc);
        pd_err_set(err, "%s: out of memory", name);
        return NULL;
    }
    const char *in = buf ? buf : "";
    int rc = format == PD_CONFIG_JSON ? pd_cfg_parse_json(doc, in, len, err)
                                      : pd_cfg_parse_yaml(doc, in, len, err);
    if (rc == 0 && !doc->root) {
        pd_err_set(err, "%s: no value was produced", name);
        rc = -1;
    }
    if (rc == 0 && build_index(doc) != 0) {
        pd_err_set(err, "%s: out of memory", name);
        rc = -1;
    }
    if (rc != 0) {
        pd_config_doc_free(doc);
        return NULL;
    }
    return doc;
}

static const char *file_kind(mode_t m)
{
    if (S_ISDIR(m))
        return "it is a directory";
    if (S_ISFIFO(m))
        return "it is a FIFO";
    if (S_ISSOCK(m))
        return "it is a socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "it is a device";
    return "it is not a plain file";
}

struct pd_config_doc *pd_config_load_file(const char *path, enum pd_config_format format,
                                          struct pd_err *err)
{
    char eb[128];
    if (!path || !*path) {
        pd_err_set(err, "config: no file name given");
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
    if (st.st_size < 0 || (uint64_t)st.st_size > PD_CONFIG_MAX_BYTES) {
        pd_err_set(err, "%s: file is too large (%lld bytes; the limit is %u bytes)", path,
                   (long long)st.st_size, PD_CONFIG_MAX_BYTES);
        close(fd);
        return NULL;
    }
    /* Read up to the limit + 1 so a file that grows after fstat is still caught. */
    size_t cap = (size_t)st.st_size + 1;
    char *buf = pd_cfg_alloc(cap);
    if (!buf) {
        pd_err_set(err, "%s: out of memory", path);
        close(fd);
        return NULL;
    }
    size_t len = 0;
    for (;;) {
        if (len == cap) {
            if (cap > PD_CONFIG_MAX_BYTES) {
                pd_err_set(err, "%s: file is too large (more than %u bytes)", path,
                           PD_CONFIG_MAX_BYTES);
                goto fail;
            }
            size_t ncap = cap * 2 > (size_t)PD_CONFIG_MAX_BYTES + 1
                              ? (size_t)PD_CONFIG_MAX_BYTES + 1
                              : cap * 2;
            char *nb = pd_cfg_alloc(ncap);
            if (!nb) {
                pd_err_set(err, "%s: out of memory", path);
                goto fail;
            }
            memcpy(nb, buf, len);
            pd_cfg_free(buf);
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
    struct pd_config_doc *doc = pd_config_load_buffer(path, buf, len, format, err);
    pd_cfg_free(buf);
    return doc;
fail:
    close(fd);
    pd_cfg_free(buf);
    return NULL;
}

void pd_config_doc_free(struct pd_config_doc *doc)
{
    if (!doc)
        return;
    json_decref(doc->root);
    pd_cfg_free(doc->name);
    pd_cfg_free(doc->ents);
    pd_cfg_free(doc->keys);
    pd_cfg_free(doc->by_node);
    pd_cfg_free(doc->by_child);
    pd_cfg_free(doc);
}

json_t *pd_config_root(const struct pd_config_doc *doc)
{
    return doc ? doc->root : NULL;
}

const char *pd_config_name(const struct pd_config_doc *doc)
{
    return doc && doc->name ? doc->name : "<input>";
}

enum pd_config_format pd_config_format_of(const struct pd_config_doc *doc)
{
    return doc ? doc->format : PD_CONFIG_AUTO;
}

/* ---- locations ---- */

bool pd_config_locate(const struct pd_config_doc *doc, const json_t *node,
                      struct pd_config_loc *out)
{
    if (!doc || !node)
        return false;
    if (node == doc->root) {
        if (out)
            *out = doc->root_loc;
        return doc->root_loc.line != 0;
    }
    if (is_shared(node) || doc->n_slots == 0)
        return false;
    size_t mask = doc->n_slots - 1;
    for (size_t i = (size_t)mix64((uint64_t)(uintptr_t)node) & mask; doc->by_node[i] != 0;
         i = (i + 1) & mask) {
        const struct cfg_entry *e = &doc->ents[doc->by_node[i] - 1];
        if (e->node == node) {
            if (out)
                *out = e->loc;
            return true;
        }
    }
    return false;
}

bool pd_config_locate_member(const struct pd_config_doc *doc, const json_t *obj, const char *key,
                             struct pd_config_loc *value_loc, struct pd_config_loc *key_loc)
{
    if (!doc || !obj || !key)
        return false;
    const struct cfg_entry *e = find_child(doc, obj, key, strlen(key), true, 0);
    /* The slot may have been replaced since loading: trust it only if it still holds that node. */
    if (!e || json_object_get(obj, key) != e->node)
        return false;
    if (value_loc)
        *value_loc = e->loc;
    if (key_loc)
        *key_loc = e->key_loc;
    return true;
}

bool pd_config_locate_index(const struct pd_config_doc *doc, const json_t *arr, size_t index,
                            struct pd_config_loc *out)
{
    if (!doc || !arr)
        return false;
    const struct cfg_entry *e = find_child(doc, arr, NULL, 0, false, index);
    if (!e || json_array_get(arr, index) != e->node)
        return false;
    if (out)
        *out = e->loc;
    return true;
}

static const char *format_where(const struct pd_config_doc *doc, bool found,
                                struct pd_config_loc loc, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return "";
    if (found && loc.line != 0)
        snprintf(buf, cap, "%s:%u:%u", pd_config_name(doc), loc.line, loc.col);
    else
        snprintf(buf, cap, "%s", pd_config_name(doc));
    return buf;
}

const char *pd_config_where(const struct pd_config_doc *doc, const json_t *node, char *buf,
                            size_t cap)
{
    struct pd_config_loc loc = {0, 0};
    bool found = pd_config_locate(doc, node, &loc);
    return format_where(doc, found, loc, buf, cap);
}

const char *pd_config_where_member(const struct pd_config_doc *doc, const json_t *obj,
                                   const char *key, char *buf, size_t cap)
{
    struct pd_config_loc loc = {0, 0};
    bool found = pd_config_locate_member(doc, obj, key, &loc, NULL);
    return format_where(doc, found, loc, buf, cap);
}

const char *pd_config_where_index(const struct pd_config_doc *doc, const json_t *arr, size_t index,
                                  char *buf, size_t cap)
{
    struct pd_config_loc loc = {0, 0};
    bool found = pd_config_locate_index(doc, arr, index, &loc);
    return format_where(doc, found, loc, buf, cap);
}

/* ---- accessors ---- */

const char *pd_config_get_string(const json_t *obj, const char *key, const char *def)
{
    const json_t *v = json_is_object(obj) && key ? json_object_get(obj, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : def;
}

int64_t pd_config_get_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = json_is_object(obj) && key ? json_object_get(obj, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

bool pd_config_get_bool(const json_t *obj, const char *key, bool def)
{
    const json_t *v = json_is_object(obj) && key ? json_object_get(obj, key) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : def;
}

double pd_config_get_number(const json_t *obj, const char *key, double def)
{
    const json_t *v = json_is_object(obj) && key ? json_object_get(obj, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : def;
}
