/*
 * run.h - private to `paddock run` (cmd_run.c: arguments, policy, environment; run_loop.c: the
 * gateway process, the terminal relay, signals, timeout and the exit status).
 */
#ifndef PD_CLI_RUN_H
#define PD_CLI_RUN_H

#include <stdbool.h>

#include "sandbox/sandbox.h"

struct run_gateway {
    pid_t pid;
    int pidfd; /* -1 once reaped */
    int sock; /* our end of --listeners-from: the listeners, then the gateway's lifeline */
    bool termed; /* SIGTERM sent */
};

struct run_ctx {
    struct pd_sandbox *sb;
    struct run_gateway gw;
    const char *policy_path; /* the gateway's --config (a file, or /proc/self/fd/N of a memfd) */
    int policy_memfd; /* the built-in empty policy, or -1 */
    int log_fd; /* the gateway's stderr (access log) */
    const char *log_path;
    const char *name; /* the sandbox id */
    unsigned timeout_s;
    bool pty;
};

/* Start the gateway process (when the sandbox first uses the network: socket activation): it loads
 * the policy, then waits for the listeners on ctx->gw.sock. 0, or -1 with a message. */
int pd_run_gateway_spawn(struct run_ctx *ctx);
/* Stop it (SIGTERM, then SIGKILL after a bound) and reap it. Safe when not running. */
void pd_run_gateway_stop(struct run_gateway *gw);
/* Hold the sandbox's listeners until it first uses the network, then start the gateway and hand
 * them over; relay the terminal, forward signals, apply the timeout, stop everything, and return
 * the exit status of `paddock run`. Consumes ctx->sb and stops the gateway. */
int pd_run_supervise(struct run_ctx *ctx);

#endif
