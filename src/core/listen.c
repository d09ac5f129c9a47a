/*
 * listen.c - listening socket specifications (see listen.h).
 */
#include "core/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Strict decimal parse of [0, max]; no sign, no spaces, no leading '+', at most 10 digits. */
static bool parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    if (n == 0 || n > 10)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* Offset of the first byte that is not printable ASCII (so error messages can quote the rest), or -1. */
static long first_unprintable(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return (long)(p - s);
    return -1;
}

int pd_listen_spec_parse(const char *text, struct pd_listen_spec *out, struct pd_err *err)
{
    if (!text || !*text) {
        pd_err_set(err, "empty listen address (expected ADDR:PORT or [IPV6]:PORT)");
        return -1;
    }
    long bad = first_unprintable(text);
    if (bad >= 0) {
        pd_err_set(err, "listen address has a space, control or non-ASCII byte at offset %ld (expected ADDR:PORT "
                   "or [IPV6]:PORT)", bad);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->kind = PD_LISTEN_BIND;
    out->fd = -1;
    size_t len = strlen(text);
    const char *host;
    size_t hostlen;
    const char *portstr;
    bool v6 = false;
    if (text[0] == '[') {
        const char *close = memchr(text, ']', len);
        if (!close) {
            pd_err_set(err, "listen address '%.80s': missing ']' after the IPv6 literal", text);
            return -1;
        }
        if (close[1] != ':') {
            pd_err_set(err, "listen address '%.80s': expected ':PORT' after ']'", text);
            return -1;
        }
        host = text + 1;
        hostlen = (size_t)(close - host);
        portstr = close + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(text, ':');
        if (!colon) {
            pd_err_set(err, "listen address '%.80s': missing ':PORT' (expected ADDR:PORT or [IPV6]:PORT)",
                       text);
            return -1;
        }
        host = text;
        hostlen = (size_t)(colon - text);
        portstr = colon + 1;
        if (memchr(host, ':', hostlen)) {
            pd_err_set(err, "listen address '%.80s': IPv6 addresses must be bracketed, e.g. [::1]:8080",
                       text);
            return -1;
        }
    }
    unsigned long port;
    if (!parse_uint(portstr, strlen(portstr), 65535, &port)) {
        pd_err_set(err, "listen address '%.80s': port must be a decimal number 0..65535", text);
        return -1;
    }
    char hbuf[PD_LISTEN_ADDR_MAX];
    if (hostlen == 0 || hostlen >= sizeof hbuf) {
        pd_err_set(err, "listen address '%.80s': missing or overlong address", text);
        return -1;
    }
    memcpy(hbuf, host, hostlen);
    hbuf[hostlen] = '\0';
    if (v6) {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&out->addr;
        if (inet_pton(AF_INET6, hbuf, &sa->sin6_addr) != 1) {
            pd_err_set(err, "listen address '%.80s': '%s' is not a numeric IPv6 address (zones are not supported)",
                       text, hbuf);
            return -1;
        }
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons((uint16_t)port);
        out->addrlen = sizeof *sa;
    } else {
        struct sockaddr_in *sa = (struct sockaddr_in *)&out->addr;
        /* inet_pton accepts only the dotted-quad form: no "127.1", octal or hex surprises. */
        if (inet_pton(AF_INET, hbuf, &sa->sin_addr) != 1) {
            pd_err_set(err, "listen address '%.80s': '%s' is not a numeric IPv4 address (host names are not "
                       "resolved; use e.g. 127.0.0.1 or [::1])", text, hbuf);
            return -1;
        }
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)port);
        out->addrlen = sizeof *sa;
    }
    return 0;
}

int pd_listen_check_fd(int fd, struct pd_err *err)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        pd_err_set(err, "listen fd %d is not an open file descriptor (expected an inherited listening TCP socket)",
                   fd);
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        pd_err_set(err, "listen fd %d is not a socket (expected a listening TCP socket)", fd);
        return -1;
    }
    int v = 0;
    socklen_t vl = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) != 0 || v != SOCK_STREAM) {
        pd_err_set(err, "listen fd %d is not a stream socket (expected a listening TCP socket)", fd);
        return -1;
    }
    vl = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl) != 0 || (v != AF_INET && v != AF_INET6)) {
        pd_err_set(err, "listen fd %d is not an IPv4/IPv6 socket (expected a listening TCP socket)", fd);
        return -1;
    }
    vl = sizeof v;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) != 0 || v == 0) {
        pd_err_set(err, "listen fd %d is a socket that is not listening (listen() must be called before "
                   "passing it)", fd);
        return -1;
    }
    int fdfl = fcntl(fd, F_GETFD);
    int fl = fcntl(fd, F_GETFL);
    if (fdfl < 0 || fl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) != 0 ||
        fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        pd_err_set(err, "listen fd %d: cannot set CLOEXEC/NONBLOCK: %s", fd, strerror(errno));
        return -1;
    }
    return 0;
}

int pd_listen_spec_fd(const char *text, struct pd_listen_spec *out, struct pd_err *err)
{
    unsigned long fd;
    if (!text || !parse_uint(text, strlen(text), 0x7fffffffUL, &fd)) {
        if (text && first_unprintable(text) >= 0)
            pd_err_set(err, "listen fd is not a decimal file descriptor number (it has a space, control or "
                       "non-ASCII byte)");
        else
            pd_err_set(err, "listen fd '%.40s' is not a decimal file descriptor number", text ? text : "");
        return -1;
    }
    if (pd_listen_check_fd((int)fd, err) != 0)
        return -1;
    memset(out, 0, sizeof *out);
    out->kind = PD_LISTEN_FD;
    out->fd = (int)fd;
    return 0;
}

int pd_listen_systemd(struct pd_listen_spec *out, size_t cap, size_t *n, bool unset_env,
                      struct pd_err *err)
{
    /* SD_LISTEN_FDS_START: systemd passes the sockets as fds 3, 4, ... */
    enum { FDS_START = 3 };
    const char *pid_s = getenv("LISTEN_PID");
    const char *fds_s = getenv("LISTEN_FDS");
    int rc = 0;
    if (!pid_s || !fds_s)
        return 0;
    unsigned long pid, nfds;
    if (!parse_uint(pid_s, strlen(pid_s), 0x7fffffffUL, &pid)) {
        pd_err_set(err, "LISTEN_PID='%.20s' is not a process id", pid_s);
        rc = -1;
        goto out;
    }
    if ((pid_t)pid != getpid())
        goto out; /* meant for another process (e.g. our parent): ignore */
    if (!parse_uint(fds_s, strlen(fds_s), 1024, &nfds)) {
        pd_err_set(err, "LISTEN_FDS='%.20s' is not a count 0..1024", fds_s);
        rc = -1;
        goto out;
    }
    if (nfds > cap - *n) {
        pd_err_set(err, "LISTEN_FDS=%lu: more inherited sockets than the %zu supported", nfds, cap - *n);
        rc = -1;
        goto out;
    }
    for (unsigned long i = 0; i < nfds; i++) {
        int fd = FDS_START + (int)i;
        if (pd_listen_check_fd(fd, err) != 0) {
            pd_err_prefix(err, "LISTEN_FDS (systemd socket activation)");
            rc = -1;
            goto out;
        }
        memset(&out[*n], 0, sizeof out[*n]);
        out[*n].kind = PD_LISTEN_FD;
        out[*n].fd = fd;
        (*n)++;
    }
out:
    if (unset_env) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
    }
    return rc;
}

int pd_listen_local_addr(int fd, char *addr, size_t cap, uint16_t *port, struct pd_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        pd_err_set(err, "getsockname on fd %d: %s", fd, strerror(errno));
        return -1;
    }
    const void *a;
    uint16_t p;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        a = &s4->sin_addr;
        p = ntohs(s4->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        a = &s6->sin6_addr;
        p = ntohs(s6->sin6_port);
    } else {
        pd_err_set(err, "fd %d is not an IPv4/IPv6 socket", fd);
        return -1;
    }
    if (!inet_ntop(ss.ss_family, a, addr, (socklen_t)cap)) {
        pd_err_set(err, "cannot format the local address of fd %d: %s", fd, strerror(errno));
        return -1;
    }
    *port = p;
    return 0;
}

int pd_listen_open(const struct pd_listen_spec *spec, int backlog, int *fd_out, char *addr,
                   uint16_t *port, struct pd_err *err)
{
    int fd;
    if (spec->kind == PD_LISTEN_FD) {
        fd = spec->fd;
        if (pd_listen_check_fd(fd, err) != 0) {
            if (fd >= 0)
                close(fd);
            return -1;
        }
    } else {
        int family = spec->addr.ss_family;
        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            pd_err_set(err, "socket(): %s", strerror(errno));
            return -1;
        }
        int one = 1;
        /* SO_REUSEADDR only lets a restarted daemon bind over TIME_WAIT leftovers; it does not allow two live
         * listeners on one port (that would be SO_REUSEPORT, deliberately not used: see loop.c). */
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)) {
            pd_err_set(err, "setsockopt(): %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (bind(fd, (const struct sockaddr *)&spec->addr, spec->addrlen) != 0) {
            int e = errno;
            char a[PD_LISTEN_ADDR_MAX] = "?";
            const void *ap = family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)&spec->addr)->sin6_addr
                                                : (const void *)&((const struct sockaddr_in *)&spec->addr)->sin_addr;
            uint16_t p = ntohs(family == AF_INET6 ? ((const struct sockaddr_in6 *)&spec->addr)->sin6_port
                                                  : ((const struct sockaddr_in *)&spec->addr)->sin_port);
            inet_ntop(family, ap, a, sizeof a);
            pd_err_set(err, "cannot bind %s%s%s:%u: %s", family == AF_INET6 ? "[" : "", a,
                       family == AF_INET6 ? "]" : "", p, strerror(e));
            close(fd);
            return -1;
        }
    }
    /* An inherited socket is already listening (checked); listen() again would only change its backlog,
     * which uv_listen() does per worker anyway. */
    if (spec->kind == PD_LISTEN_BIND && listen(fd, backlog > 0 ? backlog : 511) != 0) {
        pd_err_set(err, "listen(): %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (pd_listen_local_addr(fd, addr, PD_LISTEN_ADDR_MAX, port, err) != 0) {
        close(fd);
        return -1;
    }
    *fd_out = fd;
    return 0;
}
