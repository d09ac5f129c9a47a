/*
 * gateway.h - the `paddock gateway` process: load the policy, open the proxy listeners (ADDR:PORT
 * or inherited fds) and the admin listener (/metrics, /healthz), run the worker loops of
 * core/loop.h with the proxy engine (proxy.h) as their service, reload the policy on SIGHUP (a bad
 * file is refused and the old policy stays; tunnels the new policy denies are closed), flush byte
 * budgets every second and at shutdown.
 *
 * Who calls it: src/cli/cmd_gateway.c; later `paddock run` and agentd (same entry point).
 * After startup the process confines itself (confine.h): --user, no capabilities, no_new_privs,
 * a seccomp allowlist; reloads then read the config and its files as that user.
 *
 * Threads: pd_gateway_run() runs on the calling (main) thread until shutdown; reloads run there
 * too.
 */
#ifndef PD_GATEWAY_GATEWAY_H
#define PD_GATEWAY_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"
#include "core/listen.h"
#include "core/loop.h"

struct pd_gateway_opts {
    const char *config_path;
    /* Proxy listeners; when nspecs is 0 the config's `listen` list is used. Inherited fds in specs
     * are owned by pd_gateway_run from the call on (closed on every path). */
    struct pd_listen_spec specs[PD_LOOP_MAX_LISTENERS];
    size_t nspecs;
    const char *admin; /* "ADDR:PORT", or NULL for the config's admin_listen (optional) */
    /* DNS filter listeners (UDP and TCP on each ADDR:PORT); when ndns is 0 the config's dns.listen
     * is used. The gateway needs at least one proxy or DNS listener. */
    struct pd_listen_spec dns[8];
    size_t ndns;
    /* For a dns[i] of kind PD_LISTEN_FD (the inherited TCP listener): the inherited UDP socket
     * bound to the same address (--dns-listen-fd UDP,TCP). Owned like the specs' fds. */
    int dns_udp_fds[8];
    /* --listeners-from FD: a Unix socket on which the launcher (`paddock run`, agentd) sends, once
     * the policy is loaded, one message "listeners" with three fds: the proxy's listening TCP
     * socket and the DNS UDP and TCP sockets (created inside a sandbox's network namespace). They
     * are added to specs/dns. EOF before the message (the launcher gave up) exits with 1; EOF
     * later (the launcher ended, however) shuts the gateway down: the socket is its lifeline. */
    bool has_listeners_from;
    int listeners_from;
    const char *sandbox_id; /* --sandbox-id: replaces the policy's sandbox_id (every load) */
    unsigned workers; /* 0: one per CPU */
    /* Confinement (confine.h), applied once the sockets and files are open, before the workers
     * start: --user NAME (root only; NULL: keep the uid, warned about when root) and
     * --no-seccomp (debugging only). */
    const char *user;
    bool no_seccomp;
};

/* Run the gateway. Returns the exit status: 0 after a shutdown, 1 when the config or startup failed
 * (message on stderr), 2 when there is no proxy listener at all (a usage error). */
int pd_gateway_run(struct pd_gateway_opts *o);

/* `paddock gateway --check`: load, validate, print the effective policy as JSON on stdout (secrets
 * redacted). 0, or 1 with the loader's "FILE:LINE:COL: field: ..." error on stderr. */
int pd_gateway_check(const char *config_path);

#endif
