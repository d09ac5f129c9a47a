/*
 * policy.h - the egress gateway's policy: the config schema, the compiled (immutable) policy and
 * the decision function that says, for one request or tunnel, whether it may pass, which credential
 * is injected and which rate-limit and byte-budget rules apply. docs/policy.md documents
 * every key and decision; this header is the contract for the proxy engine.
 *
 * Who calls it: `paddock gateway` (load at startup, reload on SIGHUP, --check), the proxy engine
 * (pd_gw_decide() once per request and per CONNECT, after canonicalising the destination with
 * src/net/; pd_gw_decide_address() after resolving a name; pd_gw_policy_recheck() for running
 * tunnels after a reload), and later agentd (the same compile path over a document it received).
 *
 * Owns: a policy owns copies of everything it needs (the config document can be freed after
 * compiling) and the credential secrets. Secrets are read at compile time (environment, file or
 * inline), kept only in memory, registered with pd_log_secret_add() so that log lines scrub them,
 * and unregistered and wiped (explicit_bzero) when the last policy holding them is freed.
 *
 * Lifetime and threads: a compiled policy never changes. It is reference-counted with atomics:
 * pd_gw_policy_ref()/pd_gw_policy_unref() may be called from any thread; the gateway swaps a new
 * policy in on reload while in-flight requests keep their reference to the old one. Everything a
 * decision points to (rule texts, credentials, rate/budget rules) lives as long as the policy, and
 * decision fields that point into the request (upstream_host for non-alias names) as long as the
 * request. pd_gw_decide() never allocates, never blocks and keeps no state.
 *
 * Errors: compiling a bad config returns NULL with the FIRST error, written for the end user as
 * "FILE:LINE:COL: field.path: what was wrong (expected ...)"; nothing else changes (the old policy
 * keeps running). Errors never contain a secret value: they name the credential and its source (the
 * environment variable or file), never the value.
 *
 * Never: injects a credential into a connection that is not TLS made by the gateway itself (alias
 * and upgrade_http requests only; CONNECT tunnels are end-to-end and plain HTTP would put the
 * secret on the wire), lets a name rule match an IP address, lets an alias bypass the allowlist,
 * prints a secret (pd_gw_policy_describe() writes "[redacted]"), or keeps global mutable state.
 */
#ifndef PD_GATEWAY_POLICY_H
#define PD_GATEWAY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"
#include "core/err.h"
#include "core/schema.h"
#include "net/cidr.h"
#include "net/ip.h"

/* ---- Defaults and bounds (docs/policy.md lists them per key) ---- */
#define PD_GW_DEFAULT_SANDBOX_ID "default"
#define PD_GW_DEFAULT_BURST 10
#define PD_GW_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define PD_GW_DEFAULT_MAX_CONNECTIONS 1024
#define PD_GW_DEFAULT_MAX_HEAD 16384
#define PD_GW_DEFAULT_HEADER_TIMEOUT_MS 10000
#define PD_GW_DEFAULT_IDLE_TIMEOUT_MS 60000
#define PD_GW_DEFAULT_TUNNEL_IDLE_TIMEOUT_MS 300000
#define PD_GW_SECRET_MIN 4 /* bytes; shorter values cannot be scrubbed from logs (log.h) */
#define PD_GW_SECRET_MAX 8192 /* bytes of a credential value */
#define PD_GW_MAX_CREDENTIALS 100
#define PD_GW_ALIAS_SUFFIX "devbox.local" /* <alias>.devbox.local names a credential's domain */
#define PD_GW_REASON_MAX 512

/* The schema of the gateway config file (policy_schema.c); exposed for tests and docs. */
extern const struct pd_schema pd_gw_policy_schema;

struct pd_gw_policy; /* opaque, immutable, reference-counted */
struct pd_gw_credential; /* read through the accessors; the secret only through render */

struct pd_gw_limits {
    uint32_t max_connections;
    uint32_t max_head; /* bytes of a request head */
    uint32_t header_timeout_ms;
    uint32_t idle_timeout_ms; /* kept-alive client connection between requests */
    uint32_t tunnel_idle_timeout_ms; /* CONNECT tunnel without traffic either way */
};

struct pd_gw_tls_settings {
    bool require_sni; /* CONNECT to port 443 must carry SNI */
    bool allow_ech; /* a ClientHello with encrypted_client_hello is refused unless true */
};

struct pd_gw_upstream {
    const char *ca_file; /* NULL: the system trust store; otherwise an absolute/resolved path */
    uint32_t connect_timeout_ms;
};

/* The DNS filter's settings (the `dns` section; docs/policy.md). Names are allowed by the
 * same allow rules as the proxy (pd_gw_dns_decide). */
struct pd_hosts; /* net/hosts_file.h */
#define PD_GW_DNS_MAX_LISTEN 16
#define PD_GW_DNS_DEFAULT_TTL 60
#define PD_GW_DNS_DEFAULT_MAX_NAME 253
#define PD_GW_DNS_DEFAULT_MAX_LABEL 40
#define PD_GW_DNS_DEFAULT_ENTROPY 4.0
#define PD_GW_DNS_DEFAULT_ENTROPY_MIN_LEN 12
#define PD_GW_DNS_DEFAULT_UNIQUE_PER_MINUTE 100
#define PD_GW_DNS_MAX_UPSTREAMS 4
#define PD_GW_DNS_DEFAULT_CACHE 2000
#define PD_GW_DNS_DEFAULT_MAX_TTL 3600
#define PD_GW_DNS_DEFAULT_NEGATIVE_TTL 60
#define PD_GW_DNS_DEFAULT_TIMEOUT_MS 2000
struct pd_gw_dns_upstream {
    struct pd_addr addr;
    uint16_t port;
};
struct pd_gw_dns {
    const char **listen; /* ADDR:PORT, UDP and TCP each */
    size_t nlisten;
    bool forward; /* mode "forward": allowed names not in a hosts list are resolved upstream */
    struct pd_gw_dns_upstream upstreams[PD_GW_DNS_MAX_UPSTREAMS];
    size_t nupstreams;
    bool upstreams_from_resolv_conf;
    uint32_t cache_size, min_ttl, max_ttl, negative_ttl, timeout_ms;
    bool deny_refused; /* denied names get REFUSED instead of NXDOMAIN */
    uint16_t *types; /* allowed query types */
    size_t ntypes;
    bool has_answer_a, has_answer_aaaa; /* proxy-mode answers for allowed names not in any hosts */
    struct pd_addr answer_a, answer_aaaa;
    uint32_t ttl; /* of local answers */
    const char *hosts_file; /* resolved path, or NULL */
    struct pd_hosts *hosts; /* its contents (owned by the policy) */
    uint32_t max_name_length, max_label_length, entropy_min_length, unique_subdomains_per_minute;
    double max_label_entropy;
};

/* A rate-limit rule: key is the canonical pattern text ("*.github.com", "api.openai.com") or
 * "default"; the same text always yields the same key (stable across reloads). */
struct pd_gw_rate_rule {
    const char *key;
    const char *where; /* "file:line:col" of the rule */
    uint32_t requests_per_minute;
    uint32_t burst_size;
};

struct pd_gw_budget_rule {
    const char *key; /* as for rate rules */
    const char *where;
    uint64_t bytes_sent_per_hour;
    uint64_t bytes_received_per_hour; /* 0: no limit on received bytes */
};

/* ---- Loading ---- */

/*
 * Load and compile a YAML or JSON file (format by extension, see config.h). `prev` (may be NULL) is
 * the policy currently running: credentials whose value equals one of prev's share its secret, so
 * freeing prev after the swap does not unregister a value the new policy still uses (the log
 * module's registry holds one entry per value, not a count). Always pass the running policy on
 * reload, and hold a reference to it for the duration of the call. Two policies compiled without
 * that link (or another module registering the same value) share one registry entry, and the first
 * to be freed unregisters it for both. Compiling reads the environment (value_env) and files
 * (value_file): call it from the main thread, not concurrently with setenv(). Returns a policy
 * holding one reference, or NULL with *err filled (err may be NULL).
 */
struct pd_gw_policy *pd_gw_policy_load(const char *path, const struct pd_gw_policy *prev,
                                       struct pd_err *err);
/* Compile a loaded document (validated here against pd_gw_policy_schema; the document is not
 * modified and may be freed afterwards). Relative paths in it (value_file, ca_file, state_file)
 * are resolved against the directory of pd_config_name(doc). */
struct pd_gw_policy *pd_gw_policy_compile(const struct pd_config_doc *doc,
                                          const struct pd_gw_policy *prev, struct pd_err *err);
/* Take one more reference (returns p). NULL is accepted. */
struct pd_gw_policy *pd_gw_policy_ref(struct pd_gw_policy *p);
/* Drop one reference; the last one frees the policy, unregisters and wipes secrets no other policy
 * shares. NULL is accepted. */
void pd_gw_policy_unref(struct pd_gw_policy *p);

/* ---- Settings ---- */
const char *pd_gw_policy_source(const struct pd_gw_policy *p); /* config file name */
const char *pd_gw_policy_sandbox_id(const struct pd_gw_policy *p); /* never NULL */
/* The files this policy makes the gateway read or write (resolved paths): the policy itself, every
 * credential's value_file (secret), upstream.ca_file, dns.hosts_file, state_file (written). A
 * sandbox launcher keeps the agent away from them (secrets and state hidden, the rest read-only).
 * Fills out[0..cap) and returns the total count (may exceed cap). */
enum pd_gw_file_kind { PD_GW_FILE_POLICY, PD_GW_FILE_SECRET, PD_GW_FILE_READ, PD_GW_FILE_STATE };
struct pd_gw_file {
    const char *path; /* owned by the policy */
    enum pd_gw_file_kind kind;
};
size_t pd_gw_policy_files(const struct pd_gw_policy *p, struct pd_gw_file *out, size_t cap);
/* A valid sandbox id: 1 to 64 of [A-Za-z0-9._-] (the `sandbox_id` key, --sandbox-id, --name). */
bool pd_gw_sandbox_id_valid(const char *s);
/* Replace sandbox_id before the policy is published (the launcher names the sandbox). 0 or -1
 * (out of memory: the policy keeps its own id). */
int pd_gw_policy_set_sandbox_id(struct pd_gw_policy *p, const char *id);
size_t pd_gw_policy_listen_count(const struct pd_gw_policy *p);
const char *pd_gw_policy_listen(const struct pd_gw_policy *p,
                                size_t i); /* "ADDR:PORT"; NULL past end */
const char *pd_gw_policy_admin_listen(const struct pd_gw_policy *p); /* NULL when not set */
/* Where budget counters persist; NULL when not set (budgets then reset on restart: the caller logs
 * that at startup when pd_gw_policy_budget_count() > 0). */
const char *pd_gw_policy_state_file(const struct pd_gw_policy *p);
const struct pd_gw_limits *pd_gw_policy_limits(const struct pd_gw_policy *p);
const struct pd_gw_tls_settings *pd_gw_policy_tls(const struct pd_gw_policy *p);
const struct pd_gw_upstream *pd_gw_policy_upstream(const struct pd_gw_policy *p);
/* upstream.hosts: the static addresses of a canonical name (used instead of DNS). Returns the
 * count (0: not listed, resolve normally) and sets *addrs to the policy's array. */
size_t pd_gw_policy_upstream_hosts(const struct pd_gw_policy *p, const char *host,
                                   const struct pd_addr **addrs);
/* Rules in config order, for the accounting modules (pruning buckets of vanished keys on reload).
 */
size_t pd_gw_policy_rate_count(const struct pd_gw_policy *p);
const struct pd_gw_rate_rule *pd_gw_policy_rate_rule(const struct pd_gw_policy *p, size_t i);
size_t pd_gw_policy_budget_count(const struct pd_gw_policy *p);
const struct pd_gw_budget_rule *pd_gw_policy_budget_rule(const struct pd_gw_policy *p, size_t i);
size_t pd_gw_policy_credential_count(const struct pd_gw_policy *p);
const struct pd_gw_dns *pd_gw_policy_dns(const struct pd_gw_policy *p);
/* A number no other policy of this process has (compiled ones count up from 1): lets a worker tell
 * "the policy changed" without holding a reference to the old one. */
uint64_t pd_gw_policy_serial(const struct pd_gw_policy *p);

/*
 * DNS filter: may the sandbox resolve this canonical name (lower case, no trailing dot)? The most
 * specific name allow rule decides (exact beats wildcard; its ports, methods and paths do not
 * matter to DNS), and <alias>.devbox.local names of credentials are allowed (they lead to the
 * gateway). On success *rule is the rule text (or the alias domain), *apex_len the length of the
 * part of name the rule covers as a whole (exact: the name; "*.example.com": "example.com"), and
 * *allow_private the rule's allow_private. False when nothing allows the name.
 */
/* A dns.upstreams entry: "ADDR", "ADDR:PORT" or "[IPv6]:PORT" (strict address; port 53 default). */
bool pd_gw_dns_parse_upstream(const char *s, struct pd_gw_dns_upstream *u, struct pd_err *err);
bool pd_gw_dns_decide(const struct pd_gw_policy *p, const char *name, size_t len, const char **rule,
                      size_t *apex_len, bool *allow_private);

/*
 * The effective policy as JSON for `paddock gateway --check` and the admin API: every setting with
 * its defaults applied, every rule with its "file:line:col", credentials with their source by name
 * ({"env": "OPENAI_API_KEY"}, {"file": "/run/secrets/openai"} or "inline") and "value":
 * "[redacted]". Never contains a secret value. Returns a new reference, or NULL when memory ran
 * out.
 */
json_t *pd_gw_policy_describe(const struct pd_gw_policy *p);

/* ---- Decisions ---- */

/* One request or tunnel, as the proxy sees it after canonicalisation (src/net/). Exactly one of
 * host (a canonical name, pd_host_canon() kind PD_HOST_NAME) and addr (an IP literal) is set. */
struct pd_gw_request {
    const char *host; /* NUL-terminated canonical name, or NULL */
    const struct pd_addr *addr; /* IP-literal destination, or NULL */
    uint16_t port; /* 1..65535 */
    bool is_connect; /* CONNECT tunnel: method and path are not looked at */
    const char *method; /* plain HTTP: the request method (NUL-terminated) */
    const char *path; /* plain HTTP: origin-form target ("/v1/x?y"); "*" for OPTIONS * */
};

struct pd_gw_decision {
    bool allowed;
    int status; /* 0 when allowed; 403 denied by policy; 400 invalid target */
    const char *error; /* NULL when allowed; else one of the codes in docs/policy.md:
                        * destination_not_allowed, port_not_allowed, method_not_allowed,
                        * path_not_allowed, ip_literal_not_allowed, unknown_alias,
                        * alias_requires_http, private_address_not_allowed, invalid_target */
    char reason[PD_GW_REASON_MAX]; /* human text when denied ("" when allowed); safe to log and to
                                    * send to the agent (no secrets, untrusted bytes escaped) */
    const char *rule; /* the allow rule consulted (canonical text), NULL when none matched */
    const char *rule_where; /* its "file:line:col" */
    bool allow_private; /* the rule lets the name reach non-public addresses */
    /* Where to go. For an alias the credential's domain on port 443 over TLS; for upgrade_http the
     * same host on port 443 over TLS; otherwise the requested host/address and port. */
    const char *upstream_host; /* NULL for IP literals (dial rq->addr) */
    uint16_t upstream_port;
    bool upstream_tls; /* the gateway makes the TLS connection (verify certificate + host name) */
    bool via_alias; /* the request named <alias>.devbox.local */
    /* The credential to inject (header pd_gw_credential_header(), value rendered with
     * pd_gw_credential_render()); NULL when nothing is injected. Set only when upstream_tls. */
    const struct pd_gw_credential *credential;
    const struct pd_gw_rate_rule *rate; /* most specific rate-limit rule; NULL: no limit */
    const struct pd_gw_budget_rule *budget; /* most specific budget rule; NULL: no budget */
};

/*
 * Decide one request. Name rules: the most specific matching allow rule (exact beats wildcard,
 * longer wildcard suffix beats shorter) is the only one consulted; its ports, and for plain HTTP
 * its methods and paths, decide. IP literals (IPv4-mapped IPv6 unmapped first) are allowed only by
 * the longest-prefix cidr rule containing them, with a matching port, and, for non-public
 * addresses, allow_private. rate/budget/credential are filled only when allowed. Never fails: a
 * malformed request gets status 400 "invalid_target". `out` is fully overwritten.
 */
void pd_gw_decide(const struct pd_gw_policy *p, const struct pd_gw_request *rq,
                  struct pd_gw_decision *out);

/*
 * After resolving an allowed name (DNS or upstream.hosts): may the gateway dial `resolved`? A
 * non-public address (pd_addr_is_public() false: loopback, private, link-local, metadata, ...) is
 * allowed only when d->allow_private. When not, turns *d into a 403 "private_address_not_allowed"
 * denial naming the address and its classes, and returns false. A denied *d stays denied (false).
 */
bool pd_gw_decide_address(struct pd_gw_decision *d, const struct pd_addr *resolved);

/*
 * Reload: is a running tunnel or upgraded connection (rq as it was decided, `peer` the address it
 * dialed, may be NULL) still allowed under policy p? Runs pd_gw_decide() and, for names,
 * pd_gw_decide_address() on peer. The gateway closes those for which this returns false; *out (may
 * be NULL) receives the decision for the log line.
 */
bool pd_gw_policy_recheck(const struct pd_gw_policy *p, const struct pd_gw_request *rq,
                          const struct pd_addr *peer, struct pd_gw_decision *out);

/*
 * True when the path part of a request target (up to '?' or '#') could be normalised by a server
 * into something a prefix check did not see: a "." or ".." segment (also "..;param"), an encoded
 * '.', '/' or '\' (%2e %2f %5c, any case) or a raw backslash. Path rules never match such a path
 * (the request is denied with path_not_allowed); config path prefixes may not contain them.
 */
bool pd_gw_path_ambiguous(const char *path, size_t len);

/* ---- Credentials (borrowed from the policy) ---- */
const char *pd_gw_credential_name(const struct pd_gw_credential *c);
/* The name of the first credential whose value occurs in s[0..len) (`paddock run` refuses to put
 * such a string in the sandbox's environment), or NULL. */
const char *pd_gw_policy_secret_owner(const struct pd_gw_policy *p, const char *s, size_t len);
const char *pd_gw_credential_header(const struct pd_gw_credential *c); /* header field name */
const char *pd_gw_credential_domain(const struct pd_gw_credential *c); /* canonical pattern */
const char *pd_gw_credential_alias(const struct pd_gw_credential *c); /* NULL when none */
bool pd_gw_credential_upgrade_http(const struct pd_gw_credential *c);
/* Bytes of the rendered header value (format with {value} replaced), without a NUL. */
size_t pd_gw_credential_render_len(const struct pd_gw_credential *c);
/*
 * Render the header value into buf (NUL-terminated): the ONE place a secret is copied out of the
 * policy. Returns the length, or -1 when cap < pd_gw_credential_render_len(c) + 1 (buf untouched).
 * The caller must explicit_bzero() the buffer as soon as the header has been written.
 */
long pd_gw_credential_render(const struct pd_gw_credential *c, char *buf, size_t cap);

/* ---- Internal to policy.c and policy_schema.c; not for others ---- */
/* The layout is here only because the compiler (policy.c) and the describer/accessors
 * (policy_schema.c) share it. Callers use the functions above; nothing outside
 * src/gateway/policy*.c may read these fields (in particular the secret). */

struct pd_gw_secret {
    _Atomic unsigned refs; /* policies holding it (a reload shares it with the previous one) */
    size_t len;
    char *value; /* heap, wiped and freed with the last reference */
};

struct pd_gw_allow_rule {
    const char *text; /* canonical pattern or CIDR */
    const char *where; /* file:line:col of the entry */
    bool is_cidr;
    struct pd_cidr cidr;
    uint16_t *ports;
    size_t nports;
    const char **methods;
    size_t nmethods;
    const char **paths;
    size_t *pathlens;
    size_t npaths;
    bool allow_private;
};

enum pd_gw_source { PD_GW_SRC_ENV, PD_GW_SRC_FILE, PD_GW_SRC_INLINE };

struct pd_gw_credential {
    const char *name, *domain, *header, *format, *alias, *where;
    size_t pre_len; /* bytes of format before "{value}" */
    const char *post; /* format after "{value}" */
    size_t post_len;
    enum pd_gw_source kind;
    const char *source; /* variable name or resolved file path; NULL for inline */
    bool upgrade_http;
    struct pd_gw_secret *secret;
};

struct pd_gw_hosts_entry {
    const char *name;
    struct pd_addr *addrs;
    size_t n;
};

struct pd_gw_chunk; /* arena chunk (policy.c) */
struct pd_domain_set;

struct pd_gw_policy {
    _Atomic unsigned refs;
    uint64_t serial;
    struct pd_gw_chunk *arena; /* every string and array below, freed at once */
    const char *source, *dir, *sandbox_id, *admin_listen, *state_file;
    const char **listen;
    size_t nlisten;
    struct pd_gw_allow_rule *rules; /* config order */
    size_t nrules;
    struct pd_gw_allow_rule **cidrs;
    size_t ncidrs;
    struct pd_domain_set *allow_set; /* name rules */
    struct pd_gw_credential *creds;
    size_t ncreds;
    struct pd_domain_set *cred_set, *alias_set; /* domain -> cred, <alias>.devbox.local -> cred */
    struct pd_gw_secret **secrets; /* distinct values */
    size_t nsecrets;
    struct pd_gw_rate_rule *rates;
    size_t nrates;
    const struct pd_gw_rate_rule *rate_default;
    struct pd_domain_set *rate_set;
    struct pd_gw_budget_rule *budgets;
    size_t nbudgets;
    const struct pd_gw_budget_rule *budget_default;
    struct pd_domain_set *budget_set;
    struct pd_gw_hosts_entry *hosts;
    size_t nhosts;
    struct pd_domain_set *host_set;
    struct pd_gw_limits limits;
    struct pd_gw_tls_settings tls;
    struct pd_gw_upstream upstream;
    struct pd_gw_dns dns;
};

/* While compiling (policy.c owns the arena; policy_schema.c reads the settings sections). */
void *pd_gw_alloc(struct pd_gw_policy *p, size_t n); /* zeroed, freed with p; NULL: OOM */
char *pd_gw_strdup(struct pd_gw_policy *p, const char *s); /* NULL stays NULL */
const char *pd_gw_resolve_path(struct pd_gw_policy *p, const char *s); /* against p->dir */
/* sandbox_id, listen, admin_listen, state_file, limits, tls, upstream of a validated document. */
int pd_gw_compile_settings(struct pd_gw_policy *p, const struct pd_config_doc *doc,
                           struct pd_err *err);
/* Schema checks shared by the sections (policy_schema.c): an "ADDR:PORT" listener with a numeric
 * address; an array without repeated values. */
int pd_gw_check_listen(const json_t *v, struct pd_err *err);
int pd_gw_check_unique(const json_t *v, struct pd_err *err);
/* The `dns` section (dns_policy.c): its schema, compiler and describer. */
extern const struct pd_schema pd_gw_dns_schema;
int pd_gw_compile_dns(struct pd_gw_policy *p, const struct pd_config_doc *doc, struct pd_err *err);
json_t *pd_gw_describe_dns(const struct pd_gw_policy *p);

#endif
