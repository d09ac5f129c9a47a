/*
 * escape_net.c - the escape probe's network attempts: raw-socket, packet-socket, vsock,
 * netlink-route-change, connect, udp-dns, unix-connect, and http through the sandbox's proxy. The
 * contract is at the top of escape.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define IO_TIMEOUT_MS 2000
#define HTTP_TIMEOUT_MS 5000
#define HTTP_MAX (256 * 1024)

/* ---------------------------------------------------------------- sockets */

static void a_socket(struct out *o, const char *label, int domain, int type, int proto)
{
    errno = 0;
    long fd = syscall(SYS_socket, (long)domain, (long)(type | SOCK_CLOEXEC), (long)proto);
    int err = errno;
    esc_try_result(o, label, fd >= 0, err);
    if (fd >= 0)
        close((int)fd);
}

void esc_a_raw_socket(struct out *o)
{
    a_socket(o, "socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)", AF_INET, SOCK_RAW, IPPROTO_ICMP);
    a_socket(o, "socket(AF_INET, SOCK_RAW, IPPROTO_RAW)", AF_INET, SOCK_RAW, IPPROTO_RAW);
    a_socket(o, "socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)", AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
}

void esc_a_packet_socket(struct out *o)
{
    a_socket(o, "socket(AF_PACKET, SOCK_RAW)", AF_PACKET, SOCK_RAW, (int)htons(ETH_P_ALL));
    a_socket(o, "socket(AF_PACKET, SOCK_DGRAM)", AF_PACKET, SOCK_DGRAM, (int)htons(ETH_P_ALL));
}

void esc_a_vsock(struct out *o)
{
    a_socket(o, "socket(AF_VSOCK, SOCK_STREAM)", AF_VSOCK, SOCK_STREAM, 0);
}

struct nl_req {
    struct nlmsghdr nh;
    union {
        struct ifaddrmsg ifa;
        struct rtmsg rt;
    } u;
    char attrs[64];
};

static void nl_attr(struct nl_req *r, unsigned short type, const void *data, unsigned short len)
{
    struct rtattr *a = (struct rtattr *)(void *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + (unsigned)RTA_ALIGN(a->rta_len);
}

/* Send one request, read its ACK: 0 when the kernel accepted it, else a positive errno. */
static int nl_talk(int fd, struct nl_req *r)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (sendto(fd, r, r->nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
        return errno;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char buf[4096] __attribute__((aligned(8)));
    for (;;) {
        int pr = poll(&pfd, 1, IO_TIMEOUT_MS);
        if (pr <= 0)
            return pr == 0 ? ETIMEDOUT : errno;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0)
            return errno;
        size_t len = (size_t)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != r->nh.nlmsg_seq)
                continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                    return EPROTO;
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return -e->error;
            }
        }
    }
}

static void nl_addr(struct nl_req *r, unsigned short type, unsigned short flags, unsigned idx,
                    uint32_t seq)
{
    memset(r, 0, sizeof *r);
    r->nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
    r->nh.nlmsg_type = type;
    r->nh.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
    r->nh.nlmsg_seq = seq;
    r->u.ifa.ifa_family = AF_INET;
    r->u.ifa.ifa_prefixlen = 32;
    r->u.ifa.ifa_scope = RT_SCOPE_HOST;
    r->u.ifa.ifa_index = idx;
    struct in_addr a;
    inet_pton(AF_INET, "192.0.2.77", &a);
    nl_attr(r, IFA_LOCAL, &a, sizeof a);
    nl_attr(r, IFA_ADDRESS, &a, sizeof a);
}

static void nl_route(struct nl_req *r, unsigned short type, unsigned short flags, unsigned idx,
                     uint32_t seq)
{
    memset(r, 0, sizeof *r);
    r->nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
    r->nh.nlmsg_type = type;
    r->nh.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
    r->nh.nlmsg_seq = seq;
    r->u.rt.rtm_family = AF_INET;
    r->u.rt.rtm_dst_len = 32;
    r->u.rt.rtm_table = RT_TABLE_MAIN;
    r->u.rt.rtm_protocol = RTPROT_BOOT;
    r->u.rt.rtm_scope = RT_SCOPE_LINK;
    r->u.rt.rtm_type = RTN_UNICAST;
    struct in_addr a;
    inet_pton(AF_INET, "198.51.100.77", &a);
    nl_attr(r, RTA_DST, &a, sizeof a);
    uint32_t oif = idx;
    nl_attr(r, RTA_OIF, &oif, sizeof oif);
}

void esc_a_netlink_route_change(struct out *o)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) {
        esc_try_result(o, "socket(AF_NETLINK, NETLINK_ROUTE)", false, errno);
        return;
    }
    esc_detail(o, "NETLINK_ROUTE socket opened");
    unsigned idx = if_nametoindex("lo");
    if (idx == 0)
        idx = 1;
    struct nl_req r;
    nl_addr(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, idx, 1);
    /* The kernel checks CAP_NET_ADMIN first: any answer but EPERM means the change was permitted.
     */
    int e = nl_talk(fd, &r);
    esc_try_permission(o, "RTM_NEWADDR 192.0.2.77/32 on lo", e == 0 ? 0 : -1, e);
    if (e == 0) {
        nl_addr(&r, RTM_DELADDR, 0, idx, 2);
        nl_talk(fd, &r);
    }
    nl_route(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, idx, 3);
    e = nl_talk(fd, &r);
    esc_try_permission(o, "RTM_NEWROUTE 198.51.100.77/32 dev lo", e == 0 ? 0 : -1, e);
    if (e == 0) {
        nl_route(&r, RTM_DELROUTE, 0, idx, 4);
        nl_talk(fd, &r);
    }
    close(fd);
}

/* An IPv4 or IPv6 literal and a port into *ss. */
static bool sockaddr_of(const char *addr, long port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        *len = sizeof *in;
        return true;
    }
    if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
        return true;
    }
    return false;
}

/* A TCP connection within timeout_ms: the fd, or -1 with errno. */
static int tcp_connect(const struct sockaddr_storage *ss, socklen_t len, int timeout_ms)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)ss, len) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int pr;
    do {
        pr = poll(&pfd, 1, timeout_ms);
    } while (pr < 0 && errno == EINTR);
    if (pr <= 0) {
        int e = pr == 0 ? ETIMEDOUT : errno;
        close(fd);
        errno = e;
        return -1;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        int e = soerr ? soerr : errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void esc_a_connect(struct out *o, int argc, char **argv)
{
    long port = 0;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (argc < 2 || !esc_parse_long(argv[1], 1, 65535, &port) ||
        !sockaddr_of(argv[0], port, &ss, &len)) {
        esc_probe_error(
            o, EINVAL,
            "usage: escape connect ADDR PORT (numeric IPv4/IPv6 address, port 1..65535)");
        return;
    }
    int fd = tcp_connect(&ss, len, IO_TIMEOUT_MS);
    char label[128];
    snprintf(label, sizeof label, "TCP connect %s port %ld", argv[0], port);
    esc_try_result(o, label, fd >= 0, errno);
    esc_close_fd(fd);
}

void esc_a_udp_dns(struct out *o, int argc, char **argv)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (argc < 1 || !sockaddr_of(argv[0], 53, &ss, &len)) {
        esc_probe_error(o, EINVAL, "usage: escape udp-dns ADDR (numeric address; port 53)");
        return;
    }
    unsigned char q[64];
    uint16_t id = (uint16_t)(getpid() ^ time(NULL));
    size_t n = 0;
    q[n++] = (unsigned char)(id >> 8);
    q[n++] = (unsigned char)id;
    static const unsigned char rest[] = {0x01, 0x00, 0,   1,   0,   0,   0,   0,   0,
                                         0,    7,    'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                         3,    'c',  'o', 'm', 0,   0,   1,   0,   1};
    memcpy(q + n, rest, sizeof rest);
    n += sizeof rest;
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        esc_try_result(o, "socket(SOCK_DGRAM)", false, errno);
        return;
    }
    char label[128];
    snprintf(label, sizeof label, "DNS query for example.com to %s:53", argv[0]);
    if (sendto(fd, q, n, 0, (struct sockaddr *)&ss, len) < 0) {
        esc_try_result(o, label, false, errno);
        close(fd);
        return;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr;
    do {
        pr = poll(&pfd, 1, IO_TIMEOUT_MS);
    } while (pr < 0 && errno == EINTR);
    if (pr <= 0) {
        esc_try_result(o, label, false, pr == 0 ? ETIMEDOUT : errno);
        esc_detail(o, "sent, no answer within 2 s");
        close(fd);
        return;
    }
    unsigned char ans[1500];
    ssize_t got = recv(fd, ans, sizeof ans, 0);
    int err = errno;
    close(fd);
    esc_try_result(o, label, got > 0, got == 0 ? EIO : err);
    if (got > 0)
        esc_x_member_int(o, "answer_bytes", got);
}

/* A Unix stream socket: a path, or an abstract name written @NAME. */
void esc_a_unix_connect(struct out *o, int argc, char **argv)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    size_t n = argc > 0 ? strlen(argv[0]) : 0;
    if (n < 2 || n >= sizeof sun.sun_path) {
        esc_probe_error(o, EINVAL, "usage: escape unix-connect PATH|@ABSTRACT (at most %zu bytes)",
                        sizeof sun.sun_path - 1);
        return;
    }
    memcpy(sun.sun_path, argv[0], n);
    bool abstract = argv[0][0] == '@';
    if (abstract)
        sun.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 0 : 1));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        esc_try_result(o, "socket(AF_UNIX)", false, errno);
        return;
    }
    char label[160];
    snprintf(label, sizeof label, "connect to %s Unix socket %s", abstract ? "abstract" : "the",
             argv[0]);
    int rc = connect(fd, (struct sockaddr *)&sun, len);
    esc_try_result(o, label, rc == 0, errno);
    close(fd);
}

/* ---------------------------------------------------------------- HTTP through the proxy */

void esc_a_http(struct out *o, int argc, char **argv)
{
    if (argc < 1 || strncmp(argv[0], "http://", 7) != 0) {
        esc_probe_error(o, EINVAL, "usage: escape http http://HOST[:PORT]/PATH");
        return;
    }
    const char *proxy = getenv("HTTP_PROXY");
    if (!proxy || !*proxy)
        proxy = getenv("http_proxy");
    if (!proxy || !*proxy) {
        esc_probe_error(o, EINVAL, "HTTP_PROXY is not set");
        return;
    }
    esc_x_member_str(o, "proxy", proxy, strlen(proxy));
    /* http://ADDR:PORT[/] with a numeric address (IPv6 in brackets). */
    const char *p = strncmp(proxy, "http://", 7) == 0 ? proxy + 7 : proxy;
    char host[128];
    const char *hend;
    const char *portp;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend || hend[1] != ':') {
            esc_probe_error(o, EINVAL, "cannot parse HTTP_PROXY '%s'", proxy);
            return;
        }
        p++;
        portp = hend + 2;
    } else {
        hend = strchr(p, ':');
        if (!hend) {
            esc_probe_error(o, EINVAL, "cannot parse HTTP_PROXY '%s' (expected http://ADDR:PORT)",
                            proxy);
            return;
        }
        portp = hend + 1;
    }
    size_t hl = (size_t)(hend - p);
    if (hl == 0 || hl >= sizeof host) {
        esc_probe_error(o, EINVAL, "cannot parse HTTP_PROXY '%s'", proxy);
        return;
    }
    memcpy(host, p, hl);
    host[hl] = '\0';
    char portbuf[8];
    size_t pl = strcspn(portp, "/");
    if (pl == 0 || pl >= sizeof portbuf) {
        esc_probe_error(o, EINVAL, "cannot parse the port of HTTP_PROXY '%s'", proxy);
        return;
    }
    memcpy(portbuf, portp, pl);
    portbuf[pl] = '\0';
    long port = 0;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!esc_parse_long(portbuf, 1, 65535, &port) || !sockaddr_of(host, port, &ss, &len)) {
        esc_probe_error(o, EINVAL, "HTTP_PROXY '%s' is not http://NUMERIC-ADDR:PORT", proxy);
        return;
    }
    const char *auth = argv[0] + 7;
    size_t al = strcspn(auth, "/?#");
    int fd = tcp_connect(&ss, len, HTTP_TIMEOUT_MS);
    if (fd < 0) {
        esc_try_result(o, "connect to the proxy", false, errno);
        return;
    }
    char req[8192];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: paddock-escape\r\n"
                      "Connection: close\r\n\r\n",
                      argv[0], (int)al, auth);
    if (rl < 0 || (size_t)rl >= sizeof req) {
        close(fd);
        esc_probe_error(o, EINVAL, "URL too long");
        return;
    }
    /* The socket is non-blocking: poll before each write and read. */
    size_t off = 0;
    int e = 0;
    while (off < (size_t)rl && !e) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr = poll(&pfd, 1, HTTP_TIMEOUT_MS);
        if (pr <= 0) {
            e = pr == 0 ? ETIMEDOUT : errno;
            break;
        }
        ssize_t w = send(fd, req + off, (size_t)rl - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w < 0)
            e = errno;
        else
            off += (size_t)w;
    }
    char *resp = e ? NULL : malloc(HTTP_MAX);
    size_t n = 0;
    if (!e && !resp)
        e = ENOMEM;
    while (!e && n < HTTP_MAX) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, HTTP_TIMEOUT_MS);
        if (pr <= 0) {
            if (pr < 0 && errno == EINTR)
                continue;
            if (n == 0)
                e = pr == 0 ? ETIMEDOUT : errno;
            break;
        }
        ssize_t r = recv(fd, resp + n, HTTP_MAX - n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r < 0) {
            if (n == 0)
                e = errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (e || n == 0) {
        free(resp);
        esc_try_result(o, "request through the proxy", false, e ? e : ECONNRESET);
        esc_detail(o, "no response");
        return;
    }
    int status = 0;
    if (n < 12 || strncmp(resp, "HTTP/1.", 7) != 0 || sscanf(resp + 9, "%3d", &status) != 1) {
        esc_x_member_str(o, "raw", resp, n < SHOW_MAX ? n : SHOW_MAX);
        free(resp);
        esc_try_result(o, "request through the proxy", false, EPROTO);
        esc_detail(o, "not an HTTP response");
        return;
    }
    esc_x_member_int(o, "status", status);
    const char *body = memmem(resp, n, "\r\n\r\n", 4);
    size_t hlen = body ? (size_t)(body - resp) + 4 : n;
    esc_x_member_str(o, "head", resp, hlen < SHOW_MAX ? hlen : SHOW_MAX);
    size_t blen = n - hlen;
    esc_x_member_str(o, "body", resp + hlen, blen < SHOW_MAX ? blen : SHOW_MAX);
    free(resp);
    char label[64];
    snprintf(label, sizeof label, "GET through the proxy: status %d", status);
    esc_try_result(o, label, status >= 200 && status < 300, EACCES);
}
