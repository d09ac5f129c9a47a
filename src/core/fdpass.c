/* fdpass.c - see fdpass.h. */

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fdpass.h"

int pd_fdpass_send(int sock, const void *buf, size_t len, const int *fds, size_t nfds)
{
    if (nfds > PD_FDPASS_MAX) {
        errno = EINVAL;
        return -1;
    }
    union {
        char b[CMSG_SPACE(sizeof(int) * PD_FDPASS_MAX)];
        struct cmsghdr align;
    } cbuf;
    memset(&cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        mh.msg_control = cbuf.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n >= 0)
            return (size_t)n == len ? 0 : (errno = EMSGSIZE, -1);
        if (errno != EINTR)
            return -1;
    }
}

ssize_t pd_fdpass_recv(int sock, void *buf, size_t len, int *fds, size_t maxfds)
{
    for (size_t i = 0; i < maxfds; i++)
        fds[i] = -1;
    union {
        char b[CMSG_SPACE(sizeof(int) * PD_FDPASS_MAX)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b, .msg_controllen = sizeof cbuf.b};
    ssize_t n;
    do
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    size_t got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int tmp[PD_FDPASS_MAX * 2];
        if (k > sizeof tmp / sizeof tmp[0])
            k = sizeof tmp / sizeof tmp[0];
        memcpy(tmp, CMSG_DATA(c), k * sizeof(int));
        for (size_t i = 0; i < k; i++) {
            if (got < maxfds)
                fds[got++] = tmp[i];
            else
                close(tmp[i]); /* more than the caller expects: never leak */
        }
    }
    if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
        for (size_t i = 0; i < got; i++) {
            close(fds[i]);
            fds[i] = -1;
        }
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}
