/*
 * cmd_policy.c - `paddock policy check FILE`: validate a `paddock run` policy (the gateway's keys
 * and the `sandbox` section) the way `paddock run` does, and print its effective form as JSON:
 * every default filled in, every rule with its FILE:LINE:COL, credentials by their source's name
 * only (never a value).
 *
 * Exit status: 0 valid (the effective policy on stdout), 1 invalid (FILE:LINE:COL: key: reason on
 * stderr), 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/config.h"
#include "gateway/policy.h"
#include "sandbox/run_policy.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: paddock policy check FILE\n"
               "\n"
               "Validate a policy for `paddock run` (YAML or JSON: the gateway's keys and the\n"
               "`sandbox` section, docs/sandbox.md and docs/gateway-config.md) and print its\n"
               "effective form: defaults filled in, rules with their FILE:LINE:COL, credentials\n"
               "by the name of their source only.\n"
               "\n"
               "Exit status: 0 valid, 1 invalid (the error names file, line, column and key),\n"
               "2 usage error.\n");
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

int pd_cmd_policy(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2)
        return pd_cli_usage_error("policy", "expected a subcommand: paddock policy check FILE");
    if (strcmp(argv[1], "check") != 0)
        return pd_cli_usage_error("policy", "unknown subcommand '%s' (expected: check)", argv[1]);
    if (argc == 3 && (!strcmp(argv[2], "-h") || !strcmp(argv[2], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc != 3)
        return pd_cli_usage_error("policy", "expected one FILE: paddock policy check FILE");
    return check(argv[2]);
}
