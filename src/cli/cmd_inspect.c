/*
 * cmd_inspect.c - `paddock inspect-host`: show how Paddock reads a host name or address.
 *
 * The same functions the gateway and DNS filter use (src/net/) canonicalise each argument,
 * recognise IP literals in any spelling, classify addresses (loopback, metadata, ...) and match
 * domain patterns, so an operator can see why a destination is treated the way it is. Read-only; no
 * network access.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "net/domain.h"
#include "net/host.h"
#include "net/ip.h"

#define MAX_PATTERNS 64

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: paddock inspect-host [--pattern PATTERN]... [--json] HOST...\n"
        "\n"
        "Show how Paddock reads each HOST: its canonical form, whether it is an IP address (in "
        "any\n"
        "spelling: 127.1, 0x7f.0.0.1, 2130706433, [::ffff:127.0.0.1], ...), the address classes\n"
        "(loopback, private, link-local, metadata, ...) and which --pattern entries\n"
        "(api.example.com, *.example.com) match it.\n"
        "\n"
        "  --pattern P   a domain pattern to match against (repeatable)\n"
        "  --json        one JSON object per host on stdout\n"
        "\n"
        "Exit status: 0 if every HOST is valid, 1 if any is not (reason on stderr), 2 on usage "
        "errors.\n");
}

static json_t *describe_addr(const struct pd_addr *a)
{
    char text[PD_ADDR_STRLEN];
    char classes[256];
    uint32_t flags = pd_addr_classify(a);
    pd_addr_format(a, text, sizeof text);
    pd_addr_classes_format(flags, classes, sizeof classes);
    json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "address", text, "family",
                          a->family == AF_INET ? "ipv4" : "ipv6", "classes", classes, "public",
                          pd_addr_is_public(a));
    if (!o)
        return NULL;
    struct pd_embedded emb[PD_EMBED_MAX];
    size_t n = pd_addr_embedded(a, emb);
    if (n > 0) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
            char v4[PD_ADDR_STRLEN];
            char c4[256];
            pd_addr_format(&emb[i].v4, v4, sizeof v4);
            pd_addr_classes_format(pd_addr_classify(&emb[i].v4), c4, sizeof c4);
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "form",
                                                 pd_embed_kind_name(emb[i].kind), "ipv4", v4,
                                                 "classes", c4));
        }
        json_object_set_new(o, "embedded_ipv4", arr ? arr : json_null());
    }
    return o;
}

static void print_human(const char *input, json_t *o)
{
    printf("%s\n", input);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    printf("  canonical:  %s\n", json_string_value(json_object_get(o, "canonical")));
    if (strcmp(kind, "address") == 0) {
        printf("  kind:       %s address%s\n", json_string_value(json_object_get(o, "family")),
               json_is_true(json_object_get(o, "canonical_spelling"))
                   ? ""
                   : " (non-canonical spelling)");
        printf("  classes:    %s\n", json_string_value(json_object_get(o, "classes")));
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(o, "embedded_ipv4"), i, e)
        {
            printf("  embeds:     %s (%s) via %s\n", json_string_value(json_object_get(e, "ipv4")),
                   json_string_value(json_object_get(e, "classes")),
                   json_string_value(json_object_get(e, "form")));
        }
        printf("  public:     %s\n",
               json_is_true(json_object_get(o, "public"))
                   ? "yes"
                   : "no (the gateway refuses to dial it unless a rule allows it)");
    } else {
        printf("  kind:       host name\n");
    }
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(o, "patterns"), i, m)
    {
        printf("  pattern:    %-30s %s\n", json_string_value(json_object_get(m, "pattern")),
               json_is_true(json_object_get(m, "match")) ? "matches" : "no match");
    }
}

/* Whether the input spelled the address the way Paddock prints it (brackets around IPv6 allowed).
 */
static bool canonical_spelling(const char *input, const char *canonical)
{
    size_t n = strlen(input);
    if (n >= 2 && input[0] == '[' && input[n - 1] == ']')
        return n - 2 == strlen(canonical) && strncmp(input + 1, canonical, n - 2) == 0;
    return strcmp(input, canonical) == 0;
}

static json_t *inspect_one(const char *input, const struct pd_domain *patterns, size_t npatterns)
{
    char canon[PD_HOST_MAX + 1];
    size_t canon_len = 0;
    struct pd_addr addr;
    struct pd_err err = {{0}};
    enum pd_host_kind kind = pd_host_canon(input, strlen(input), canon, &canon_len, &addr, &err);
    json_t *o;
    if (kind == PD_HOST_INVALID)
        return json_pack("{s:s, s:s, s:s}", "input", input, "kind", "invalid", "error", err.msg);
    if (kind == PD_HOST_ADDR) {
        o = describe_addr(&addr);
        if (!o)
            return NULL;
        json_object_set_new(o, "kind", json_string("address"));
        json_object_set_new(o, "canonical_spelling",
                            json_boolean(canonical_spelling(input, canon)));
    } else {
        o = json_pack("{s:s}", "kind", "name");
        if (!o)
            return NULL;
    }
    json_object_set_new(o, "input", json_string(input));
    json_object_set_new(o, "canonical", json_string(canon));
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < npatterns; i++) {
        char text[PD_HOST_MAX + 3];
        pd_domain_format(&patterns[i], text, sizeof text);
        /* Patterns name hosts, never addresses: an address matches no pattern. */
        bool match = kind == PD_HOST_NAME && pd_domain_match(&patterns[i], canon, canon_len);
        json_array_append_new(arr, json_pack("{s:s, s:b}", "pattern", text, "match", match));
    }
    json_object_set_new(o, "patterns", arr ? arr : json_null());
    return o;
}

int pd_cmd_inspect_host(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pattern", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct pd_domain *patterns = calloc(MAX_PATTERNS, sizeof *patterns);
    if (!patterns) {
        fprintf(stderr, "paddock inspect-host: out of memory\n");
        return 1;
    }
    size_t npatterns = 0;
    bool as_json = false;
    int rc = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'p': {
            struct pd_err err = {{0}};
            if (npatterns >= MAX_PATTERNS) {
                rc = pd_cli_usage_error("inspect-host", "at most %d --pattern options",
                                        MAX_PATTERNS);
                goto out;
            }
            if (!pd_domain_compile(optarg, strlen(optarg), &patterns[npatterns], &err)) {
                rc = pd_cli_usage_error("inspect-host", "--pattern: %s", err.msg);
                goto out;
            }
            npatterns++;
            break;
        }
        case 'j':
            as_json = true;
            break;
        case 'h':
            usage(stdout);
            goto out;
        case ':':
            rc = pd_cli_usage_error("inspect-host", "option '%s' needs a value", argv[optind - 1]);
            goto out;
        default:
            rc = pd_cli_usage_error("inspect-host",
                                    "unknown option '%s' (see 'paddock inspect-host --help')",
                                    argv[optind - 1]);
            goto out;
        }
    }
    if (optind >= argc) {
        rc = pd_cli_usage_error("inspect-host",
                                "needs at least one HOST (see 'paddock inspect-host --help')");
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        json_t *o = inspect_one(argv[i], patterns, npatterns);
        if (!o) {
            fprintf(stderr, "paddock inspect-host: out of memory\n");
            rc = 1;
            break;
        }
        bool invalid = strcmp(json_string_value(json_object_get(o, "kind")), "invalid") == 0;
        if (invalid) {
            fprintf(stderr, "paddock inspect-host: %s\n",
                    json_string_value(json_object_get(o, "error")));
            rc = 1;
        }
        if (as_json) {
            char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            if (s) {
                printf("%s\n", s);
                free(s);
            }
        } else if (!invalid) {
            print_human(argv[i], o);
        }
        json_decref(o);
    }
out:
    free(patterns);
    return rc;
}
