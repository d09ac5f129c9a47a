/*
 * cmd_policy.c - `paddock policy check FILE`: validate a `paddock run` policy (the gateway's keys
 * and the `sandbox` section) the way `paddock run` does, and print its effective form as JSON:
 * every default filled in, every rule with its FILE:LINE:COL, credentials by their source's name
 * only (never a value).
 *
 * `paddock policy explain FILE TARGET [--method M]`: would the gateway let TARGET through under
 * FILE, which rule decides, and what the DNS filter answers for its name, with the gateway's own
 * decision code (pd_gw_decide, pd_gw_dns_decide). TARGET is http://HOST[:PORT][/PATH] (a plain
 * request: method M, default GET), https://HOST[:PORT][/...] or HOST[:PORT] (a CONNECT tunnel,
 * port 443 by default).
 *
 * Exit status: check: 0 valid (the effective policy on stdout), 1 invalid (FILE:LINE:COL: key:
 * reason on stderr); explain: 0 allowed, 3 denied, 1 invalid policy; 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/examples.h"
#include "net/host.h"
#include "core/config.h"
#include "core/str.h"
#include "gateway/policy.h"
#include "sandbox/run_policy.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: paddock policy check FILE\n"
               "       paddock policy explain FILE TARGET [--method M]\n"
               "       paddock policy keys\n"
               "       paddock policy example [NAME]\n"
               "\n"
               "Validate a policy for `paddock run` (YAML or JSON: the gateway's keys and the\n"
               "`sandbox` section; every key is in docs/policy.md) and print its\n"
               "effective form: defaults filled in, rules with their FILE:LINE:COL, credentials\n"
               "by the name of their source only.\n"
               "\n"
               "explain says whether the gateway would let TARGET through under FILE, which rule\n"
               "decides, and what the DNS filter answers for its name (the gateway's own code).\n"
               "TARGET: http://HOST[:PORT][/PATH] (a plain request, method M, default GET),\n"
               "https://HOST[:PORT][/...] or HOST[:PORT] (a CONNECT tunnel, port 443 by default).\n"
               "\n"
               "example prints a tested policy for a real agent (claude-code, codex, aider) or a\n"
               "plain project (python, node); without NAME it lists them. Save one, edit it, run:\n"
               "  paddock policy example claude-code > agent.yaml\n"
               "  paddock run --policy agent.yaml --workspace ~/project -- claude\n"
               "\n"
               "keys lists every key a policy may hold (docs/policy.md describes each one):\n"
               "PATH, TYPE and DEFAULT separated by tabs; allow[].host is a key of each rule.\n"
               "\n"
               "Exit status: check: 0 valid, 1 invalid (the error names file, line, column and\n"
               "key); explain: 0 allowed, 3 denied, 1 invalid policy; 2 usage error.\n");
}

static int check(const char *path)
{
    struct pd_err err = {{0}};
    struct pd_config_doc *doc = pd_config_load_file(path, PD_CONFIG_AUTO, &err);
    if (!doc) {
        fprintf(stderr, "paddock policy: %s\n", err.msg);
        return 1;
    }
    struct pd_gw_policy *gp = pd_gw_policy_compile(doc, NULL, &err);
    if (!gp) {
        fprintf(stderr, "paddock policy: %s\n", err.msg);
        pd_config_doc_free(doc);
        return 1;
    }
    /* The sandbox section: validated with its defaults filled in (the home only expands "~/"). */
    const char *home = getenv("HOME");
    struct pd_run_policy rp;
    if (pd_run_policy_load(doc, home && home[0] == '/' ? home : "/", &rp, &err) != 0) {
        fprintf(stderr, "paddock policy: %s\n", err.msg);
        pd_gw_policy_unref(gp);
        pd_config_doc_free(doc);
        return 1;
    }
    pd_run_policy_free(&rp);
    json_t *out = pd_gw_policy_describe(gp);
    json_t *sb = json_object_get(pd_config_root(doc), "sandbox");
    int rc = 1;
    char *s = NULL;
    if (out && sb && json_object_set(out, "sandbox", sb) == 0)
        s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        printf("%s\n", s);
        rc = 0;
    } else {
        fprintf(stderr, "paddock policy: out of memory\n");
    }
    free(s);
    json_decref(out);
    pd_gw_policy_unref(gp);
    pd_config_doc_free(doc);
    return rc;
}

struct keys_ctx {
    bool in_sandbox;
};

static int print_key(const char *path, const struct pd_schema_field *f, void *ctx)
{
    struct keys_ctx *k = ctx;
    if (!k->in_sandbox && !strcmp(path, "sandbox") && f->type == PD_SCHEMA_ANY) {
        /* The section `paddock run` owns: its own table, spliced in here. */
        k->in_sandbox = true;
        int rc = pd_schema_walk_field(&pd_run_policy_field, "sandbox", print_key, ctx);
        k->in_sandbox = false;
        return rc;
    }
    printf("%s\t%s\t%s\n", path, pd_schema_type_name(f->type),
           f->required       ? "required"
           : f->default_json ? f->default_json
                             : "-");
    return 0;
}

/* `paddock policy keys`: every key a policy may hold, one per line: PATH TAB TYPE TAB DEFAULT. */
static int keys(void)
{
    struct keys_ctx k = {false};
    if (pd_schema_walk(&pd_gw_policy_schema, NULL, print_key, &k) != 0) {
        fprintf(stderr, "paddock policy: a key path is longer than %d bytes\n", PD_SCHEMA_PATH_MAX);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* `paddock policy example [NAME]`: the built-in copies of examples/ (examples.h). */
static int example(const char *name)
{
    for (const struct pd_example *e = pd_examples; e->name; e++) {
        if (!name) {
            /* The first comment line says what it is for. */
            const char *t = e->text[0] == '#' ? e->text + 1 : e->text;
            while (*t == ' ')
                t++;
            printf("%-12s %.*s\n", e->name, (int)strcspn(t, "\n"), t);
        } else if (!strcmp(name, e->name)) {
            fputs(e->text, stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        }
    }
    if (name) {
        char names[256] = "";
        for (const struct pd_example *e = pd_examples; e->name; e++)
            pd_appendf(names, sizeof names, "%s%s", names[0] ? ", " : "", e->name);
        return pd_cli_usage_error("policy", "example: no example '%s' (one of: %s)", name, names);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

struct target {
    char host[PD_HOST_MAX + 1];
    struct pd_addr addr;
    bool is_addr;
    uint16_t port;
    bool is_connect;
    const char *path;
};

/* Parse TARGET; 0, or -1 with err saying what was expected. */
static int parse_target(const char *t, struct target *out, struct pd_err *err)
{
    memset(out, 0, sizeof *out);
    const char *rest = t;
    uint16_t def_port = 443;
    out->is_connect = true;
    out->path = "/";
    if (!strncmp(t, "http://", 7)) {
        rest = t + 7;
        def_port = 80;
        out->is_connect = false;
    } else if (!strncmp(t, "https://", 8)) {
        rest = t + 8;
    } else if (strstr(t, "://")) {
        pd_err_set(err, "'%.80s': expected http://, https:// or HOST[:PORT]", t);
        return -1;
    }
    size_t alen = strcspn(rest, "/?#");
    if (!out->is_connect && rest[alen])
        out->path = rest + alen;
    const char *host = rest, *colon = NULL;
    size_t hlen = alen;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', alen);
        if (!close) {
            pd_err_set(err, "'%.80s': expected ']' after an IPv6 address", t);
            return -1;
        }
        host = rest + 1;
        hlen = (size_t)(close - rest - 1);
        if (close + 1 < rest + alen) {
            if (close[1] != ':') {
                pd_err_set(err, "'%.80s': expected ':PORT' after ']'", t);
                return -1;
            }
            colon = close + 1;
        }
    } else {
        colon = memchr(rest, ':', alen);
        if (colon)
            hlen = (size_t)(colon - rest);
    }
    out->port = def_port;
    if (colon) {
        char *end = NULL;
        unsigned long v = strtoul(colon + 1, &end, 10);
        if (end == colon + 1 || end != rest + alen || v < 1 || v > 65535) {
            pd_err_set(err, "'%.80s': expected a port from 1 to 65535", t);
            return -1;
        }
        out->port = (uint16_t)v;
    }
    enum pd_host_kind k = pd_host_canon(host, hlen, out->host, NULL, &out->addr, err);
    if (k == PD_HOST_INVALID)
        return -1;
    out->is_addr = k == PD_HOST_ADDR;
    return 0;
}

static int explain(const char *path, const char *target, const char *method)
{
    struct pd_err err = {{0}};
    struct target t;
    if (parse_target(target, &t, &err) != 0)
        return pd_cli_usage_error("policy", "explain: %s", err.msg);
    struct pd_gw_policy *gp = pd_gw_policy_load(path, NULL, &err);
    if (!gp) {
        fprintf(stderr, "paddock policy: %s\n", err.msg);
        return 1;
    }
    struct pd_gw_request rq = {.host = t.is_addr ? NULL : t.host,
                               .addr = t.is_addr ? &t.addr : NULL,
                               .port = t.port,
                               .is_connect = t.is_connect,
                               .method = method,
                               .path = t.path};
    struct pd_gw_decision d;
    pd_gw_decide(gp, &rq, &d);
    if (t.is_connect)
        printf("target: CONNECT %s%s%s:%u\n", t.is_addr && strchr(t.host, ':') ? "[" : "", t.host,
               t.is_addr && strchr(t.host, ':') ? "]" : "", (unsigned)t.port);
    else
        printf("target: %s http://%s:%u%s\n", method, t.host, (unsigned)t.port, t.path);
    if (d.allowed) {
        printf("proxy: allowed by rule '%s' (%s)\n", d.rule ? d.rule : "?",
               d.rule_where ? d.rule_where : "?");
        if (d.upstream_tls)
            printf("upstream: %s:%u over the gateway's own TLS%s%s%s\n",
                   d.upstream_host ? d.upstream_host : t.host, (unsigned)d.upstream_port,
                   d.credential ? ", credential " : "",
                   d.credential ? pd_gw_credential_name(d.credential) : "",
                   d.credential ? " injected" : "");
        if (!t.is_addr)
            printf("addresses: checked when the name resolves (%s)\n",
                   d.allow_private ? "non-public addresses allowed: allow_private"
                                   : "public addresses only");
    } else {
        printf("proxy: denied (%s, status %d): %s\n", d.error ? d.error : "?", d.status, d.reason);
    }
    if (!t.is_addr) {
        const char *rule = NULL;
        size_t apex = 0;
        bool ap = false;
        if (pd_gw_dns_decide(gp, t.host, strlen(t.host), &rule, &apex, &ap))
            printf("dns: %s is answered (rule '%s')\n", t.host, rule ? rule : "?");
        else
            printf("dns: %s is refused (no allow rule matches the name)\n", t.host);
    }
    bool allowed = d.allowed;
    pd_gw_policy_unref(gp);
    return allowed ? 0 : 3;
}

int pd_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2)
        return pd_cli_usage_error("policy",
                                  "expected a subcommand: check FILE, explain FILE TARGET or keys");
    if (!strcmp(argv[1], "explain")) {
        const char *method = "GET";
        if (argc == 6 && !strcmp(argv[4], "--method") && argv[5][0])
            method = argv[5];
        else if (argc != 4)
            return pd_cli_usage_error("policy",
                                      "expected: paddock policy explain FILE TARGET [--method M]");
        return explain(argv[2], argv[3], method);
    }
    if (!strcmp(argv[1], "example")) {
        if (argc > 3)
            return pd_cli_usage_error("policy", "expected: paddock policy example [NAME]");
        return example(argc == 3 ? argv[2] : NULL);
    }
    if (!strcmp(argv[1], "keys")) {
        if (argc != 2)
            return pd_cli_usage_error("policy", "keys takes no arguments");
        return keys();
    }
    if (strcmp(argv[1], "check") != 0)
        return pd_cli_usage_error(
            "policy", "unknown subcommand '%s' (expected: check, explain, keys, example)", argv[1]);
    if (argc == 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 3)
        return pd_cli_usage_error("policy", "expected one FILE: paddock policy check FILE");
    return check(argv[2]);
}
