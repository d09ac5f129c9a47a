/*
 * cmd_gateway.c - `paddock gateway`: the egress gateway on its own (src/gateway/gateway.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/listen.h"
#include "core/loop.h"
#include "gateway/gateway.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: paddock gateway --config FILE [--listen ADDR:PORT]... [--listen-fd N]...\n"
        "                       [--dns-listen ADDR:PORT]... [--admin ADDR:PORT] [--workers N]\n"
        "                       [--user NAME] [--no-seccomp] [--check]\n"
        "\n"
        "Run the egress gateway: an HTTP forward proxy (absolute-form requests and CONNECT\n"
        "tunnels) that lets through only what the policy in FILE allows, and its DNS filter\n"
        "(docs/gateway-config.md). Either may run alone.\n"
        "\n"
        "  --config FILE       the gateway policy (YAML or JSON)\n"
        "  --listen ADDR:PORT  a proxy listener (repeatable; overrides the config's `listen`)\n"
        "  --listen-fd N       an inherited listening socket (repeatable; overrides `listen`)\n"
        "  --dns-listen ADDR:PORT  a DNS listener, UDP and TCP (repeatable; overrides the\n"
        "                      config's `dns.listen`)\n"
        "  --admin ADDR:PORT   /metrics and /healthz (overrides the config's `admin_listen`)\n"
        "  --workers N         worker threads (default: one per CPU)\n"
        "  --user NAME         once the sockets are open, switch to this user (root only);\n"
        "                      SIGHUP reloads then read FILE, value_file, ca_file and write\n"
        "                      state_file as NAME. As root without --user a warning is logged\n"
        "  --no-seccomp        do not load the syscall filter (debugging only; the gateway\n"
        "                      still drops capabilities and sets no_new_privs)\n"
        "  --check             load and validate FILE, print the effective policy (secrets\n"
        "                      redacted) and exit\n"
        "\n"
        "Signals: SIGHUP reloads FILE (a bad file is refused and the running policy stays),\n"
        "SIGTERM/SIGINT shut down gracefully.\n"
        "Exit status: 0 after a shutdown (or a valid --check), 1 on a bad config or a startup\n"
        "failure, 2 on usage errors.\n");
}

static void close_fds(struct pd_gateway_opts *o)
{
    for (size_t k = 0; k < o->nspecs; k++)
        if (o->specs[k].kind == PD_LISTEN_FD)
            close(o->specs[k].fd);
}

int pd_cmd_gateway(int argc, char **argv)
{
    static struct pd_gateway_opts o;
    memset(&o, 0, sizeof o);
    bool check = false;
    struct pd_err err = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            close_fds(&o);
            return 0;
        }
        if (strcmp(a, "--check") == 0) {
            check = true;
            continue;
        }
        if (strcmp(a, "--no-seccomp") == 0) {
            o.no_seccomp = true;
            continue;
        }
        const char *v = NULL;
        const char *names[] = {"--config",  "--listen", "--listen-fd", "--admin",
                               "--workers", "--user",   "--dns-listen"};
        size_t k = 0;
        for (; k < sizeof names / sizeof names[0]; k++) {
            size_t n = strlen(names[k]);
            if (strncmp(a, names[k], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                if (a[n] == '=')
                    v = a + n + 1;
                else if (i + 1 < argc)
                    v = argv[++i];
                break;
            }
        }
        if (k == sizeof names / sizeof names[0]) {
            close_fds(&o);
            return pd_cli_usage_error("gateway",
                                      "unknown option '%s' (see 'paddock gateway --help')", a);
        }
        if (!v) {
            close_fds(&o);
            return pd_cli_usage_error("gateway", "option '%s' needs a value", names[k]);
        }
        if (k == 0) {
            o.config_path = v;
        } else if (k == 1 || k == 2) {
            if (o.nspecs >= PD_LOOP_MAX_LISTENERS - 1) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "too many listeners (at most %d)",
                                          PD_LOOP_MAX_LISTENERS - 1);
            }
            int rc = k == 1 ? pd_listen_spec_parse(v, &o.specs[o.nspecs], &err)
                            : pd_listen_spec_fd(v, &o.specs[o.nspecs], &err);
            if (rc != 0) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "%s: %s", names[k], err.msg);
            }
            o.nspecs++;
        } else if (k == 3) {
            struct pd_listen_spec tmp;
            if (pd_listen_spec_parse(v, &tmp, &err) != 0) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "--admin: %s", err.msg);
            }
            o.admin = v;
        } else if (k == 6) {
            if (o.ndns >= sizeof o.dns / sizeof o.dns[0]) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "too many --dns-listen (at most %zu)",
                                          sizeof o.dns / sizeof o.dns[0]);
            }
            if (pd_listen_spec_parse(v, &o.dns[o.ndns], &err) != 0) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "--dns-listen: %s", err.msg);
            }
            o.ndns++;
        } else if (k == 5) {
            if (!*v) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "--user needs a user name");
            }
            o.user = v;
        } else {
            char *end = NULL;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (!*v || *v == '-' || errno || *end || n < 1 || n > PD_LOOP_MAX_WORKERS) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "--workers '%s' is not a number from 1 to %d",
                                          v, PD_LOOP_MAX_WORKERS);
            }
            o.workers = (unsigned)n;
        }
    }
    if (!o.config_path) {
        close_fds(&o);
        return pd_cli_usage_error("gateway",
                                  "--config FILE is required (see 'paddock gateway --help')");
    }
    if (check) {
        close_fds(&o);
        return pd_gateway_check(o.config_path);
    }
    return pd_gateway_run(&o);
}
