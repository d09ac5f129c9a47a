/* netns.c - the sandbox's network namespace, seen from inside (see sandbox_int.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/sandbox_int.h"

static int lo_up(struct pd_err *err)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        pd_err_set(err, "netns: socket for ioctl: %s", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
        pd_err_set(err, "netns: read the flags of lo: %s", strerror(errno));
        close(s);
        return -1;
    }
    ifr.ifr_flags = (short)(ifr.ifr_flags | IFF_UP);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) {
        pd_err_set(err, "netns: bring lo up: %s", strerror(errno));
        close(s);
        return -1;
    }
    close(s);
    return 0;
}

static int bound(int type, uint16_t port, struct pd_err *err)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pd_err_set(err, "netns: socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        (type == SOCK_STREAM && listen(fd, 128) != 0)) {
        pd_err_set(err, "netns: listen on 127.0.0.1:%u/%s: %s", (unsigned)port,
                   type == SOCK_STREAM ? "tcp" : "udp", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int sb_net_setup(int *proxy, int *dns_udp, int *dns_tcp, struct pd_err *err)
{
    *proxy = *dns_udp = *dns_tcp = -1;
    if (lo_up(err) != 0)
        return -1;
    if ((*proxy = bound(SOCK_STREAM, PD_SANDBOX_PROXY_PORT, err)) < 0 ||
        (*dns_udp = bound(SOCK_DGRAM, PD_SANDBOX_DNS_PORT, err)) < 0 ||
        (*dns_tcp = bound(SOCK_STREAM, PD_SANDBOX_DNS_PORT, err)) < 0) {
        if (*proxy >= 0)
            close(*proxy);
        if (*dns_udp >= 0)
            close(*dns_udp);
        *proxy = *dns_udp = -1;
        return -1;
    }
    return 0;
}
