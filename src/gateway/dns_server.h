/*
 * dns_server.h - the gateway's DNS filter on the wire: UDP and TCP (RFC 7766 length-prefixed,
 * pipelined) on each dns listener, every query decided by dns_filter.h against the gateway's
 * running policy (so it reloads with the proxy's allowlist), one JSON log line per query (event
 * "dns"), metrics on the gateway's registry.
 *
 * Process model: a loop service of its own. TCP listeners are ordinary loop listeners (every
 * worker accepts); for UDP every worker has its own socket on the listener's port (SO_REUSEPORT:
 * the kernel spreads clients over the workers by address and wakes one per datagram), read with
 * recvmmsg; the replies of a batch leave with one sendmmsg. A reply the socket cannot take at once
 * is dropped (UDP: the client retries), counted in the metrics.
 * TCP: up to PD_DNS_TCP_MAX_CONNS connections per worker, idle timeout PD_DNS_TCP_IDLE_MS between
 * queries, messages of 12..65535 bytes; a bad length prefix closes the connection.
 *
 * Lifetime: pd_dns_server_new() before confinement (it binds), after pd_loop_new() and before
 * pd_loop_run(); pd_dns_server_free() after pd_loop_run() returned. The guard (tunnelling
 * defences' burst counters) lives as long as the server, across reloads.
 */
#ifndef PD_GATEWAY_DNS_SERVER_H
#define PD_GATEWAY_DNS_SERVER_H

#include <stddef.h>

#include "core/err.h"
#include "core/listen.h"
#include "core/loop.h"
#include "core/metrics.h"

#define PD_DNS_TCP_MAX_CONNS 256
#define PD_DNS_TCP_IDLE_MS 10000u
#define PD_DNS_MAX_LISTENERS 8

struct pd_gateway;
struct pd_dns_server;

/* specs: ADDR:PORT binds (UDP and TCP on the same port; port 0 picks one for both), or inherited
 * TCP listeners (PD_LISTEN_FD) whose UDP socket is udp_fds[i] (a bound datagram socket; every
 * worker reads a dup of it). Inherited fds are owned from the call on, closed on every path. */
struct pd_dns_server *pd_dns_server_new(struct pd_gateway *gw, struct pd_loop *loop,
                                        const struct pd_listen_spec *specs, const int *udp_fds,
                                        size_t n,
                                        struct pd_metrics *reg, struct pd_err *err);
void pd_dns_server_free(struct pd_dns_server *s);

#endif
