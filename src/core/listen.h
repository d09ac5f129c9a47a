/*
 * listen.h - listening socket specifications: parse "ADDR:PORT" / "[V6]:PORT", validate inherited fds
 * (--listen-fd N, systemd's LISTEN_FDS/LISTEN_PID), and open bound sockets.
 *
 * Contract:
 *   - Addresses are numeric IP literals only (no name resolution at startup); IPv6 literals are bracketed and
 *     carry no zone. Port 0 asks the kernel for an ephemeral port; pd_listen_open() reports the real one.
 *   - An inherited fd is accepted only if it is an open AF_INET/AF_INET6 SOCK_STREAM socket in the listening
 *     state (SO_TYPE, SO_DOMAIN, SO_ACCEPTCONN); it is then switched to CLOEXEC and NONBLOCK. Anything else
 *     is refused with a message naming the fd and what was expected.
 *   - Every function fills `err` (may be NULL) on failure and leaves no fd open on any failure path.
 *   - No global state; pd_listen_systemd() reads (and optionally unsets) the LISTEN_* environment variables.
 */
#ifndef PD_CORE_LISTEN_H
#define PD_CORE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/err.h"

/* Longest textual address we print: an IPv6 literal (INET6_ADDRSTRLEN is 46). */
#define PD_LISTEN_ADDR_MAX 64

enum pd_listen_kind {
    PD_LISTEN_BIND, /* create a socket and bind it to addr */
    PD_LISTEN_FD,   /* use an inherited listening socket */
};

struct pd_listen_spec {
    enum pd_listen_kind kind;
    struct sockaddr_storage addr; /* PD_LISTEN_BIND: the address to bind */
    socklen_t addrlen;
    int fd;                       /* PD_LISTEN_FD: the inherited fd (ownership passes on pd_listen_open) */
};

/* Parse "A.B.C.D:PORT" or "[V6]:PORT" (PORT 0..65535, decimal). */
int pd_listen_spec_parse(const char *text, struct pd_listen_spec *out, struct pd_err *err);

/* Parse the decimal fd number of --listen-fd N and validate the fd (pd_listen_check_fd). */
int pd_listen_spec_fd(const char *text, struct pd_listen_spec *out, struct pd_err *err);

/* Validate that fd is a listening TCP socket and set CLOEXEC + NONBLOCK. Does not close fd. */
int pd_listen_check_fd(int fd, struct pd_err *err);

/*
 * systemd socket activation: when LISTEN_PID equals getpid(), append LISTEN_FDS specs (fds 3, 4, ...) to
 * out[*n..cap), each validated. Returns 0 when the variables are absent or name another process (nothing
 * appended), -1 on a malformed value, too many fds or an fd that is not a listening TCP socket.
 * With unset_env, LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES are removed so children do not inherit them.
 */
int pd_listen_systemd(struct pd_listen_spec *out, size_t cap, size_t *n, bool unset_env,
                      struct pd_err *err);

/*
 * Produce a listening, CLOEXEC, NONBLOCK fd for spec: BIND creates, binds (SO_REUSEADDR; IPV6_V6ONLY for
 * IPv6) and listens with backlog; FD takes ownership of spec->fd (closed on failure too) and re-validates.
 * On success *fd_out is the fd, addr (PD_LISTEN_ADDR_MAX bytes) the numeric local address and *port the
 * real local port.
 */
int pd_listen_open(const struct pd_listen_spec *spec, int backlog, int *fd_out, char *addr,
                   uint16_t *port, struct pd_err *err);

/* Numeric local address and port of a socket. */
int pd_listen_local_addr(int fd, char *addr, size_t cap, uint16_t *port, struct pd_err *err);

#endif
