/*
 * fdpass.h - one message with file descriptors over a Unix socket (SCM_RIGHTS): how the sandbox
 * hands its listening sockets to the launcher, and the launcher hands them to the gateway.
 *
 * Contract: at most PD_FDPASS_MAX fds per message. pd_fdpass_send: 0, or -1 with errno (EINTR is
 * retried; a short send is EMSGSIZE). pd_fdpass_recv: the message length (0 on EOF) or -1 with
 * errno; fds[0..maxfds) are filled in order, the rest set to -1; received fds are CLOEXEC; fds
 * beyond maxfds are closed, and on a truncated message every received fd is closed (EMSGSIZE), so
 * nothing leaks on any path. No state.
 */
#ifndef PD_CORE_FDPASS_H
#define PD_CORE_FDPASS_H

#include <stddef.h>
#include <sys/types.h>

#define PD_FDPASS_MAX 4

int pd_fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds);
ssize_t pd_fdpass_recv(int sock, void *buf, size_t len, int *fds, size_t maxfds);

#endif
