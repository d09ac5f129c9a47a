/*
 * cmd_gateway.c - `paddock gateway`: the egress gateway on its own (src/gateway/gateway.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/listen.h"
#include "core/loop.h"
#include "gateway/gateway.h"
#include "gateway/policy.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: paddock gateway --config FILE [--listen ADDR:PORT]... [--listen-fd N]...\n"
            "                       [--dns-listen ADDR:PORT]... [--dns-listen-fd UDP,TCP]...\n"
            "                       [--listeners-from FD] [--admin ADDR:PORT] [--workers N]\n"
            "                       [--user NAME] [--no-seccomp] [--check]\n"
            "\n"
            "Run the egress gateway: an HTTP forward proxy (absolute-form requests and CONNECT\n"
            "tunnels) that lets through only what the policy in FILE allows, and its DNS filter\n"
            "(docs/policy.md). Either may run alone.\n"
            "\n"
            "  --config FILE       the gateway policy (YAML or JSON)\n"
            "  --listen ADDR:PORT  a proxy listener (repeatable; overrides the config's `listen`)\n"
            "  --listen-fd N       an inherited listening socket (repeatable; overrides `listen`)\n"
            "  --dns-listen ADDR:PORT  a DNS listener, UDP and TCP (repeatable; overrides the\n"
            "                      config's `dns.listen`)\n"
            "  --dns-listen-fd UDP,TCP  inherited DNS sockets: a bound UDP socket and a listening\n"
            "                      TCP socket on the same address (repeatable; overrides "
            "`dns.listen`)\n"
            "  --listeners-from FD a Unix socket on which `paddock run` sends the listening\n"
            "                      sockets it created in a sandbox; when it closes, the gateway\n"
            "                      shuts down (internal)\n"
            "  --sandbox-id ID     the sandbox id in every log line (overrides `sandbox_id`)\n"
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
    if (o->has_listeners_from)
        close(o->listeners_from);
    for (size_t k = 0; k < o->nspecs; k++)
        if (o->specs[k].kind == PD_LISTEN_FD)
            close(o->specs[k].fd);
    for (size_t k = 0; k < o->ndns; k++)
        if (o->dns[k].kind == PD_LISTEN_FD) {
            close(o->dns[k].fd);
            close(o->dns_udp_fds[k]);
        }
}

/* --dns-listen-fd UDP,TCP: two decimal fds; the TCP one validated as a listener. */
static int parse_dns_fds(const char *v, struct pd_gateway_opts *o, struct pd_err *err)
{
    const char *comma = strchr(v, ',');
    char *end = NULL;
    errno = 0;
    long u = strtol(v, &end, 10);
    if (!comma || end != comma || v == comma || errno || u < 0 || u > 65535) {
        pd_err_set(err, "'%s' is not UDP,TCP (two fd numbers, e.g. 4,5)", v);
        return -1;
    }
    struct pd_listen_spec spec;
    if (pd_listen_spec_fd(comma + 1, &spec, err) != 0)
        return -1;
    if ((int)u == spec.fd) {
        pd_err_set(err, "'%s': the UDP and TCP sockets must be different fds", v);
        return -1;
    }
    o->dns[o->ndns] = spec;
    o->dns_udp_fds[o->ndns] = (int)u;
    o->ndns++;
    return 0;
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
        const char *names[] = {"--config",         "--listen",    "--listen-fd",  "--admin",
                               "--workers",        "--user",      "--dns-listen", "--dns-listen-fd",
                               "--listeners-from", "--sandbox-id"};
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
        } else if (k == 9) {
            if (!pd_gw_sandbox_id_valid(v)) {
                close_fds(&o);
                return pd_cli_usage_error(
                    "gateway", "--sandbox-id '%s': expected 1 to 64 of [A-Za-z0-9._-]", v);
            }
            o.sandbox_id = v;
        } else if (k == 8) {
            char *end = NULL;
            errno = 0;
            long fd = strtol(v, &end, 10);
            int type = 0;
            socklen_t tl = sizeof type;
            if (!*v || *end || errno || fd < 3 || fd > 65535 ||
                getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) {
                close_fds(&o);
                return pd_cli_usage_error("gateway",
                                          "--listeners-from '%s': expected an inherited Unix "
                                          "socket's fd number (3 or more)",
                                          v);
            }
            o.has_listeners_from = true;
            o.listeners_from = (int)fd;
        } else if (k == 7) {
            if (o.ndns >= sizeof o.dns / sizeof o.dns[0]) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "too many DNS listeners (at most %zu)",
                                          sizeof o.dns / sizeof o.dns[0]);
            }
            if (parse_dns_fds(v, &o, &err) != 0) {
                close_fds(&o);
                return pd_cli_usage_error("gateway", "--dns-listen-fd: %s", err.msg);
            }
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
