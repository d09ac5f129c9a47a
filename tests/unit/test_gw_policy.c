/* test_gw_policy.c - gateway policy: config schema and errors, decisions, credentials, secrets,
 * rate/budget rule selection, describe, reference counting and the reload recheck. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "gateway/policy.h"

#ifndef PD_TEST_SRCDIR
#define PD_TEST_SRCDIR "."
#endif
#define DATA_DIR PD_TEST_SRCDIR "/tests/unit/data/gateway"

#define OPENAI_SECRET "sk-test-OPENAI-0123456789"
#define GITHUB_SECRET "ghp_test_GITHUB_abcdef"

/* ---- helpers ---- */

static struct pd_gw_policy *compile_text(const char *name, const char *text, struct pd_err *err)
{
    pd_err_clear(err);
    struct pd_config_doc *doc =
        pd_config_load_buffer(name, text, strlen(text), PD_CONFIG_AUTO, err);
    if (!doc)
        return NULL;
    struct pd_gw_policy *p = pd_gw_policy_compile(doc, NULL, err);
    pd_config_doc_free(doc);
    return p;
}

static struct pd_gw_policy *policy(const char *text)
{
    struct pd_err err;
    struct pd_gw_policy *p = compile_text("p.yaml", text, &err);
    if (!p)
        fail_msg("unexpected config error: %s", err.msg);
    return p;
}

static void expect_error_as(const char *name, const char *text, const char *msg)
{
    struct pd_err err;
    struct pd_gw_policy *p = compile_text(name, text, &err);
    if (p) {
        pd_gw_policy_unref(p);
        fail_msg("expected an error for:\n%s", text);
    }
    if (strcmp(err.msg, msg) != 0)
        fail_msg("error\n  got:  %s\n  want: %s", err.msg, msg);
}

static void expect_error(const char *text, const char *msg)
{
    expect_error_as("p.yaml", text, msg);
}

static struct pd_gw_decision dec(const struct pd_gw_policy *p, const char *host, uint16_t port,
                                 const char *method, const char *path)
{
    struct pd_gw_request rq = {
        .host = host, .port = port, .is_connect = method == NULL, .method = method, .path = path};
    struct pd_gw_decision d;
    pd_gw_decide(p, &rq, &d);
    return d;
}

static struct pd_gw_decision dec_ip(const struct pd_gw_policy *p, const char *ip, uint16_t port,
                                    const char *method, const char *path)
{
    struct pd_addr a;
    assert_true(pd_ip_parse(ip, strlen(ip), &a, NULL));
    struct pd_gw_request rq = {
        .addr = &a, .port = port, .is_connect = method == NULL, .method = method, .path = path};
    struct pd_gw_decision d;
    pd_gw_decide(p, &rq, &d);
    return d;
}

static void expect_allowed(struct pd_gw_decision d, const char *rule)
{
    if (!d.allowed)
        fail_msg("expected allowed by '%s', got %s: %s", rule, d.error, d.reason);
    assert_int_equal(d.status, 0);
    assert_null(d.error);
    assert_string_equal(d.reason, "");
    assert_string_equal(d.rule, rule);
}

static void expect_denied(struct pd_gw_decision d, const char *error, const char *reason)
{
    if (d.allowed)
        fail_msg("expected denied (%s), got allowed by %s", error, d.rule);
    assert_int_equal(d.status, strcmp(error, "invalid_target") == 0 ? 400 : 403);
    assert_string_equal(d.error, error);
    if (reason && strcmp(d.reason, reason) != 0)
        fail_msg("reason\n  got:  %s\n  want: %s", d.reason, reason);
    assert_null(d.credential);
    assert_null(d.rate);
    assert_null(d.budget);
}

static char *describe_text(const struct pd_gw_policy *p)
{
    json_t *j = pd_gw_policy_describe(p);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    assert_non_null(s);
    return s;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* Is `value` scrubbed from log lines right now? */
static bool scrubbed(const char *value)
{
    char line[512];
    const struct pd_log_field f[] = {PD_LSTR("msg", value)};
    pd_log_format(line, sizeof line, 0, PD_LOG_INFO, "test", "probe", f, 1);
    return strstr(line, value) == NULL && strstr(line, "[redacted]") != NULL;
}

static int setup_env(void **state)
{
    (void)state;
    setenv("PD_TEST_GW_OPENAI", OPENAI_SECRET, 1);
    setenv("PD_TEST_GW_GITHUB", GITHUB_SECRET, 1);
    unsetenv("PD_TEST_GW_UNSET");
    setenv("PD_TEST_GW_EMPTY", "", 1);
    return 0;
}

/* ---- loading the example files ---- */

static void check_example(const struct pd_gw_policy *p, const char *source)
{
    assert_string_equal(pd_gw_policy_source(p), source);
    assert_string_equal(pd_gw_policy_sandbox_id(p), "demo");
    assert_int_equal(pd_gw_policy_listen_count(p), 1);
    assert_string_equal(pd_gw_policy_listen(p, 0), "127.0.0.1:3128");
    assert_null(pd_gw_policy_listen(p, 1));
    assert_string_equal(pd_gw_policy_admin_listen(p), "127.0.0.1:9901");
    assert_string_equal(pd_gw_policy_state_file(p), DATA_DIR "/state/gateway-state.json");
    const struct pd_gw_limits *l = pd_gw_policy_limits(p);
    assert_int_equal(l->max_connections, 256);
    assert_int_equal(l->max_head, 8192);
    assert_int_equal(l->header_timeout_ms, 5000);
    assert_int_equal(l->idle_timeout_ms, 30000);
    assert_int_equal(l->tunnel_idle_timeout_ms, 120000);
    assert_true(pd_gw_policy_tls(p)->require_sni);
    assert_false(pd_gw_policy_tls(p)->allow_ech);
    assert_string_equal(pd_gw_policy_upstream(p)->ca_file, "/etc/ssl/certs/ca-certificates.crt");
    assert_int_equal(pd_gw_policy_upstream(p)->connect_timeout_ms, 5000);
    const struct pd_addr *addrs;
    char text[PD_ADDR_STRLEN];
    assert_int_equal(pd_gw_policy_upstream_hosts(p, "origin.test", &addrs), 2);
    pd_addr_format(&addrs[0], text, sizeof text);
    assert_string_equal(text, "127.0.0.1");
    pd_addr_format(&addrs[1], text, sizeof text);
    assert_string_equal(text, "::1");
    assert_int_equal(pd_gw_policy_upstream_hosts(p, "other.test", &addrs), 0);
    assert_null(addrs);
    assert_int_equal(pd_gw_policy_credential_count(p), 2);
    assert_int_equal(pd_gw_policy_rate_count(p), 2);
    assert_string_equal(pd_gw_policy_rate_rule(p, 1)->key, "*.github.com");
    assert_int_equal(pd_gw_policy_rate_rule(p, 1)->burst_size, PD_GW_DEFAULT_BURST);
    assert_null(pd_gw_policy_rate_rule(p, 2));
    assert_int_equal(pd_gw_policy_budget_count(p), 1);
    const struct pd_gw_budget_rule *b = pd_gw_policy_budget_rule(p, 0);
    assert_string_equal(b->key, "api.openai.com");
    assert_int_equal(b->bytes_sent_per_hour, 10485760);
    assert_int_equal(b->bytes_received_per_hour, 104857600);
    assert_null(pd_gw_policy_budget_rule(p, 1));

    struct pd_gw_decision d = dec(p, "origin.test", 8080, "GET", "/");
    expect_allowed(d, "origin.test");
    assert_true(d.allow_private);
}

static void test_load_example_yaml_and_json(void **state)
{
    (void)state;
    struct pd_err err;
    struct pd_gw_policy *p = pd_gw_policy_load(DATA_DIR "/policy.yaml", NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    check_example(p, DATA_DIR "/policy.yaml");
    struct pd_gw_policy *j = pd_gw_policy_load(DATA_DIR "/policy.json", p, &err);
    if (!j)
        fail_msg("%s", err.msg);
    check_example(j, DATA_DIR "/policy.json");
    /* The same policy in both formats describes the same, apart from the positions. */
    json_t *a = pd_gw_policy_describe(p), *b = pd_gw_policy_describe(j);
    assert_non_null(a);
    assert_non_null(b);
    json_object_del(a, "source");
    json_object_del(b, "source");
    const char *sections[] = {"allow", "credentials", "rate_limits", "budgets"};
    for (size_t s = 0; s < 4; s++)
        for (size_t i = 0; i < json_array_size(json_object_get(a, sections[s])); i++) {
            json_object_del(json_array_get(json_object_get(a, sections[s]), i), "where");
            json_object_del(json_array_get(json_object_get(b, sections[s]), i), "where");
        }
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    pd_gw_policy_unref(p);
    pd_gw_policy_unref(j);
}

static void test_defaults(void **state)
{
    (void)state;
    struct pd_err err;
    struct pd_gw_policy *p = pd_gw_policy_load(DATA_DIR "/minimal.yaml", NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    assert_string_equal(pd_gw_policy_sandbox_id(p), "default");
    assert_int_equal(pd_gw_policy_listen_count(p), 0);
    assert_null(pd_gw_policy_admin_listen(p));
    assert_null(pd_gw_policy_state_file(p));
    assert_null(pd_gw_policy_upstream(p)->ca_file);
    assert_int_equal(pd_gw_policy_upstream(p)->connect_timeout_ms, 10000);
    assert_true(pd_gw_policy_tls(p)->require_sni);
    assert_false(pd_gw_policy_tls(p)->allow_ech);
    const struct pd_gw_limits *l = pd_gw_policy_limits(p);
    assert_int_equal(l->max_connections, 1024);
    assert_int_equal(l->max_head, 16384);
    assert_int_equal(l->header_timeout_ms, 10000);
    assert_int_equal(l->idle_timeout_ms, 60000);
    assert_int_equal(l->tunnel_idle_timeout_ms, 300000);
    assert_int_equal(pd_gw_policy_rate_count(p), 0);
    assert_int_equal(pd_gw_policy_budget_count(p), 0);
    char *s = describe_text(p);
    assert_non_null(strstr(s, "\"allow\": []"));
    free(s);
    pd_gw_policy_unref(p);
}

/* ---- decisions ---- */

static void test_exact_vs_wildcard(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n"
                                    "  - host: example.com\n"
                                    "    ports: [443]\n"
                                    "  - host: \"*.example.com\"\n"
                                    "  - host: API.Example.com.\n"
                                    "    ports: [8443]\n"
                                    "  - host: \"*.deep.example.com\"\n"
                                    "    ports: [22]\n");
    expect_allowed(dec(p, "example.com", 443, NULL, NULL), "example.com");
    expect_denied(
        dec(p, "example.com", 80, NULL, NULL), "port_not_allowed",
        "example.com:80 is not allowed: rule 'example.com' (p.yaml:2:5) allows ports 443");
    expect_allowed(dec(p, "www.example.com", 80, NULL, NULL), "*.example.com");
    expect_allowed(dec(p, "a.b.example.com", 443, NULL, NULL), "*.example.com");
    /* The exact rule is the only one consulted for its name: the wildcard's ports do not help. */
    expect_allowed(dec(p, "api.example.com", 8443, NULL, NULL), "api.example.com");
    expect_denied(dec(p, "api.example.com", 443, NULL, NULL), "port_not_allowed",
                  "api.example.com:443 is not allowed: rule 'api.example.com' (p.yaml:5:5) allows "
                  "ports 8443");
    /* Longest wildcard suffix wins. */
    expect_allowed(dec(p, "x.deep.example.com", 22, NULL, NULL), "*.deep.example.com");
    expect_denied(dec(p, "x.deep.example.com", 443, NULL, NULL), "port_not_allowed",
                  "x.deep.example.com:443 is not allowed: rule '*.deep.example.com' (p.yaml:7:5) "
                  "allows ports 22");
    expect_allowed(dec(p, "deep.example.com", 443, NULL, NULL), "*.example.com");
    expect_denied(dec(p, "evilexample.com", 443, NULL, NULL), "destination_not_allowed",
                  "evilexample.com:443 is not allowed: no allow rule matches the name");
    expect_denied(dec(p, "example.com.evil.com", 443, NULL, NULL), "destination_not_allowed",
                  "example.com.evil.com:443 is not allowed: no allow rule matches the name");
    expect_denied(dec(p, "com", 443, NULL, NULL), "destination_not_allowed", NULL);
    pd_gw_policy_unref(p);
}

static void test_default_ports(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n  - host: a.test\n  - host: b.test\n    ports: "
                                    "[8080, 443]\n");
    expect_allowed(dec(p, "a.test", 80, "GET", "/"), "a.test");
    expect_allowed(dec(p, "a.test", 443, NULL, NULL), "a.test");
    expect_denied(dec(p, "a.test", 8080, NULL, NULL), "port_not_allowed",
                  "a.test:8080 is not allowed: rule 'a.test' (p.yaml:2:5) allows ports 80, 443");
    expect_allowed(dec(p, "b.test", 8080, "GET", "/"), "b.test");
    expect_denied(dec(p, "b.test", 80, "GET", "/"), "port_not_allowed",
                  "b.test:80 is not allowed: rule 'b.test' (p.yaml:3:5) allows ports 8080, 443");
    struct pd_gw_decision d = dec(p, "a.test", 443, NULL, NULL);
    assert_string_equal(d.upstream_host, "a.test");
    assert_int_equal(d.upstream_port, 443);
    assert_false(d.upstream_tls);
    assert_false(d.allow_private);
    assert_string_equal(d.rule_where, "p.yaml:2:5");
    pd_gw_policy_unref(p);
}

static void test_methods_and_paths(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n"
                                    "  - host: api.test\n"
                                    "    methods: [GET, POST]\n"
                                    "    paths: [\"/v1/\", \"/health\"]\n");
    expect_allowed(dec(p, "api.test", 80, "GET", "/v1/models"), "api.test");
    expect_allowed(dec(p, "api.test", 80, "POST", "/v1/x?y=/../z"), "api.test");
    expect_allowed(dec(p, "api.test", 80, "GET", "/health"), "api.test");
    expect_allowed(dec(p, "api.test", 80, "GET", "/healthz"), "api.test"); /* a prefix */
    expect_denied(dec(p, "api.test", 80, "DELETE", "/v1/x"), "method_not_allowed",
                  "method DELETE to api.test is not allowed: rule 'api.test' (p.yaml:2:5) allows "
                  "methods GET, POST");
    expect_denied(dec(p, "api.test", 80, "get", "/v1/x"), "method_not_allowed", NULL);
    expect_denied(dec(p, "api.test", 80, "GET", "/v2/x"), "path_not_allowed",
                  "path /v2/x on api.test is not allowed: rule 'api.test' (p.yaml:2:5) allows "
                  "paths /v1/, /health");
    expect_denied(dec(p, "api.test", 80, "GET", "/v1"), "path_not_allowed", NULL);
    expect_denied(dec(p, "api.test", 80, "GET", "/v1/../admin"), "path_not_allowed",
                  "path /v1/../admin on api.test is not allowed: it has '.' or '..' segments or "
                  "encoded separators, so rule 'api.test' (p.yaml:2:5) cannot match it");
    expect_denied(dec(p, "api.test", 80, "GET", "/v1/%2E%2e/admin"), "path_not_allowed", NULL);
    expect_denied(dec(p, "api.test", 80, "GET", "/v1/..;/admin"), "path_not_allowed", NULL);
    expect_denied(dec(p, "api.test", 80, "GET", "/v1/a%2fb"), "path_not_allowed", NULL);
    expect_denied(dec(p, "api.test", 80, "GET", "/v1\\..\\admin"), "path_not_allowed", NULL);
    expect_denied(dec(p, "api.test", 80, "OPTIONS", "*"), "method_not_allowed", NULL);
    /* Untrusted bytes in a reason are escaped. */
    expect_denied(dec(p, "api.test", 80, "GET", "/x\x01y"), "path_not_allowed",
                  "path /x\\x01y on api.test is not allowed: rule 'api.test' (p.yaml:2:5) allows "
                  "paths /v1/, /health");
    /* CONNECT: methods and paths are not looked at. */
    expect_allowed(dec(p, "api.test", 443, NULL, NULL), "api.test");
    pd_gw_policy_unref(p);

    assert_false(pd_gw_path_ambiguous("/a/b.c/..d/...", 14));
    assert_false(pd_gw_path_ambiguous("/a?b=/../", 9));
    assert_false(pd_gw_path_ambiguous("/a%20b%2", 8));
    assert_true(pd_gw_path_ambiguous("/.", 2));
    assert_true(pd_gw_path_ambiguous("..", 2));
    assert_true(pd_gw_path_ambiguous("/a/./b", 6));
    assert_true(pd_gw_path_ambiguous("/a/.;x/b", 8));
    assert_true(pd_gw_path_ambiguous("/a%5Cb", 6));
}

static void test_ip_literals(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n"
                                    "  - host: example.com\n"
                                    "  - cidr: 93.184.216.0/24\n"
                                    "    ports: [443]\n"
                                    "  - cidr: 93.184.216.128/25\n"
                                    "    ports: [8443]\n"
                                    "  - cidr: \"2606:4700::/32\"\n"
                                    "  - cidr: 10.0.0.0/8\n"
                                    "  - cidr: 192.168.0.0/16\n"
                                    "    allow_private: true\n");
    expect_allowed(dec_ip(p, "93.184.216.5", 443, NULL, NULL), "93.184.216.0/24");
    expect_allowed(dec_ip(p, "::ffff:93.184.216.5", 443, NULL, NULL), "93.184.216.0/24");
    expect_denied(
        dec_ip(p, "93.184.216.5", 80, "GET", "/"), "port_not_allowed",
        "93.184.216.5:80 is not allowed: rule '93.184.216.0/24' (p.yaml:3:5) allows ports 443");
    /* Longest prefix wins, and only it is consulted. */
    expect_allowed(dec_ip(p, "93.184.216.200", 8443, NULL, NULL), "93.184.216.128/25");
    expect_denied(dec_ip(p, "93.184.216.200", 443, NULL, NULL), "port_not_allowed", NULL);
    expect_allowed(dec_ip(p, "2606:4700::1", 80, "GET", "/"), "2606:4700::/32");
    expect_denied(
        dec_ip(p, "[2607:f8b0::1]", 443, NULL, NULL), "ip_literal_not_allowed",
        "2607:f8b0::1 is an IP address and no cidr rule allows it (name rules never match "
        "addresses)");
    expect_denied(dec_ip(p, "151.101.1.1", 443, NULL, NULL), "ip_literal_not_allowed", NULL);
    expect_denied(dec_ip(p, "10.1.2.3", 443, NULL, NULL), "private_address_not_allowed",
                  "10.1.2.3 is not a public address (private): rule '10.0.0.0/8' (p.yaml:8:5) does "
                  "not set allow_private");
    expect_allowed(dec_ip(p, "192.168.1.1", 443, NULL, NULL), "192.168.0.0/16");
    expect_allowed(dec_ip(p, "::ffff:192.168.1.1", 443, NULL, NULL), "192.168.0.0/16");
    struct pd_gw_decision d = dec_ip(p, "93.184.216.5", 443, NULL, NULL);
    assert_null(d.upstream_host);
    assert_int_equal(d.upstream_port, 443);
    /* A name rule never matches an address (example.com's address is not example.com). */
    expect_denied(dec_ip(p, "23.192.228.80", 443, NULL, NULL), "ip_literal_not_allowed", NULL);
    pd_gw_policy_unref(p);

    p = policy("allow:\n  - host: example.com\n");
    expect_denied(dec_ip(p, "127.0.0.1", 80, "GET", "/"), "ip_literal_not_allowed", NULL);
    expect_denied(dec_ip(p, "::ffff:127.0.0.1", 80, "GET", "/"), "ip_literal_not_allowed",
                  "127.0.0.1 is an IP address and no cidr rule allows it (name rules never match "
                  "addresses)");
    pd_gw_policy_unref(p);
}

static void test_empty_allowlist(void **state)
{
    (void)state;
    const char *texts[] = {"sandbox_id: x\n", "allow: []\n"};
    for (size_t i = 0; i < 2; i++) {
        struct pd_gw_policy *p = policy(texts[i]);
        expect_denied(dec(p, "example.com", 443, NULL, NULL), "destination_not_allowed",
                      "example.com:443 is not allowed: the allowlist is empty (everything is "
                      "denied)");
        expect_denied(dec_ip(p, "93.184.216.1", 443, NULL, NULL), "ip_literal_not_allowed", NULL);
        pd_gw_policy_unref(p);
    }
}

static void test_invalid_target(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n  - host: a.test\n");
    struct pd_addr a;
    assert_true(pd_ip_parse("1.2.3.4", 7, &a, NULL));
    struct pd_gw_request bad[] = {
        {.port = 443, .is_connect = true},
        {.host = "a.test", .addr = &a, .port = 443, .is_connect = true},
        {.host = "a.test", .port = 0, .is_connect = true},
        {.host = "", .port = 443, .is_connect = true},
        {.host = "a.test", .port = 80, .method = "GET"},
        {.host = "a.test", .port = 80, .path = "/"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pd_gw_decision d;
        pd_gw_decide(p, &bad[i], &d);
        expect_denied(d, "invalid_target", "the request has no valid destination");
    }
    pd_gw_policy_unref(p);
}

static const char aliases_yaml[] = "allow:\n"
                                   "  - host: api.openai.com\n"
                                   "    ports: [443]\n"
                                   "    paths: [\"/v1/\"]\n"
                                   "credentials:\n"
                                   "  - name: OPENAI\n"
                                   "    domain: api.openai.com\n"
                                   "    header: Authorization\n"
                                   "    format: \"Bearer {value}\"\n"
                                   "    alias: openai\n"
                                   "    value_env: PD_TEST_GW_OPENAI\n"
                                   "  - name: ANTHROPIC\n"
                                   "    domain: api.anthropic.com\n"
                                   "    header: x-api-key\n"
                                   "    format: \"{value}\"\n"
                                   "    alias: anthropic\n"
                                   "    value: sk-ant-inline-value\n"
                                   "rate_limits:\n"
                                   "  - domain: api.openai.com\n"
                                   "    requests_per_minute: 30\n";

static void test_aliases(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy(aliases_yaml);
    struct pd_gw_decision d = dec(p, "openai.devbox.local", 80, "POST", "/v1/chat");
    expect_allowed(d, "api.openai.com");
    assert_true(d.via_alias);
    assert_true(d.upstream_tls);
    assert_string_equal(d.upstream_host, "api.openai.com");
    assert_int_equal(d.upstream_port, 443);
    assert_non_null(d.credential);
    assert_string_equal(pd_gw_credential_name(d.credential), "OPENAI");
    assert_string_equal(pd_gw_credential_alias(d.credential), "openai");
    assert_string_equal(pd_gw_credential_header(d.credential), "Authorization");
    assert_string_equal(d.rate->key, "api.openai.com");
    /* The allow rules of the real domain apply. */
    expect_denied(dec(p, "openai.devbox.local", 80, "GET", "/v2/x"), "path_not_allowed",
                  "alias openai.devbox.local -> path /v2/x on api.openai.com is not allowed: rule "
                  "'api.openai.com' (p.yaml:2:5) allows paths /v1/");
    /* An alias does not bypass the allowlist. */
    d = dec(p, "anthropic.devbox.local", 80, "POST", "/v1/messages");
    expect_denied(d, "destination_not_allowed",
                  "alias anthropic.devbox.local -> api.anthropic.com:443 is not allowed: no allow "
                  "rule matches the name");
    assert_true(d.via_alias);
    expect_denied(dec(p, "foo.devbox.local", 80, "GET", "/"), "unknown_alias",
                  "foo.devbox.local: unknown alias 'foo' (no credential has it)");
    expect_denied(dec(p, "x.openai.devbox.local", 80, "GET", "/"), "unknown_alias",
                  "x.openai.devbox.local: unknown alias 'x.openai' (no credential has it)");
    expect_denied(dec(p, "devbox.local", 80, "GET", "/"), "unknown_alias",
                  "devbox.local is reserved for credential aliases (<alias>.devbox.local)");
    expect_denied(
        dec(p, "openai.devbox.local", 443, NULL, NULL), "alias_requires_http",
        "openai.devbox.local is a credential alias: send plain http://openai.devbox.local/ "
        "requests (the gateway itself connects to api.openai.com over TLS); CONNECT is "
        "not supported");
    expect_denied(dec(p, "openai.devbox.local", 8080, "GET", "/v1/x"), "port_not_allowed",
                  "openai.devbox.local:8080: alias requests use port 80 "
                  "(http://openai.devbox.local/); the gateway connects to api.openai.com:443");
    /* Direct requests to the real domain carry no credential (CONNECT is end-to-end TLS; plain
     * HTTP without upgrade_http would put the secret on the wire). */
    d = dec(p, "api.openai.com", 443, NULL, NULL);
    expect_allowed(d, "api.openai.com");
    assert_null(d.credential);
    assert_false(d.via_alias);
    pd_gw_policy_unref(p);
}

static void test_credential_selection_and_render(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n"
                                    "  - host: \"*.github.com\"\n"
                                    "  - host: plain.test\n"
                                    "credentials:\n"
                                    "  - name: GH_WILD\n"
                                    "    domain: \"*.github.com\"\n"
                                    "    header: Authorization\n"
                                    "    format: \"token {value}\"\n"
                                    "    value_env: PD_TEST_GW_GITHUB\n"
                                    "    upgrade_http: true\n"
                                    "  - name: GH_API\n"
                                    "    domain: api.github.com\n"
                                    "    header: Authorization\n"
                                    "    format: \"Bearer {value} (api)\"\n"
                                    "    value: gh-api-inline-secret\n"
                                    "  - name: PLAIN\n"
                                    "    domain: plain.test\n"
                                    "    header: X-Key\n"
                                    "    format: \"{value}\"\n"
                                    "    value: plain-inline-secret\n");
    /* Wildcard credential with upgrade_http: plain http to port 80 goes to 443 over TLS. */
    struct pd_gw_decision d = dec(p, "codeload.github.com", 80, "GET", "/x");
    expect_allowed(d, "*.github.com");
    assert_non_null(d.credential);
    assert_string_equal(pd_gw_credential_name(d.credential), "GH_WILD");
    assert_string_equal(pd_gw_credential_domain(d.credential), "*.github.com");
    assert_true(pd_gw_credential_upgrade_http(d.credential));
    assert_null(pd_gw_credential_alias(d.credential));
    assert_true(d.upstream_tls);
    assert_int_equal(d.upstream_port, 443);
    assert_string_equal(d.upstream_host, "codeload.github.com");
    char buf[64];
    assert_int_equal(pd_gw_credential_render_len(d.credential), strlen("token " GITHUB_SECRET));
    assert_int_equal(pd_gw_credential_render(d.credential, buf, sizeof buf),
                     (long)strlen("token " GITHUB_SECRET));
    assert_string_equal(buf, "token " GITHUB_SECRET);
    explicit_bzero(buf, sizeof buf);
    memset(buf, 'z', sizeof buf);
    assert_int_equal(pd_gw_credential_render(d.credential, buf, strlen("token " GITHUB_SECRET)),
                     -1);
    assert_int_equal(buf[0], 'z');
    /* The exact credential is the most specific one (and has no upgrade): nothing injected. */
    d = dec(p, "api.github.com", 80, "GET", "/x");
    expect_allowed(d, "*.github.com");
    assert_null(d.credential);
    assert_false(d.upstream_tls);
    assert_int_equal(d.upstream_port, 80);
    /* CONNECT never carries a credential; neither does another port. */
    assert_null(dec(p, "codeload.github.com", 443, NULL, NULL).credential);
    d = dec(p, "codeload.github.com", 8080, "GET", "/");
    assert_null(d.credential);
    assert_false(d.upstream_tls);
    /* The upgraded request is checked on the port it is sent to. */
    struct pd_gw_policy *q = policy("allow:\n"
                                    "  - host: up.test\n"
                                    "    ports: [80]\n"
                                    "credentials:\n"
                                    "  - name: UP\n"
                                    "    domain: up.test\n"
                                    "    header: X-Key\n"
                                    "    format: \"{value}\"\n"
                                    "    value: up-inline-secret\n"
                                    "    upgrade_http: true\n");
    expect_denied(dec(q, "up.test", 80, "GET", "/"), "port_not_allowed",
                  "plain http is upgraded to TLS on port 443: up.test:443 is not allowed: rule "
                  "'up.test' (p.yaml:2:5) allows ports 80");
    /* Format text around {value}. */
    struct pd_gw_policy *r = policy("allow:\n  - host: a.test\n"
                                    "credentials:\n"
                                    "  - name: A\n"
                                    "    domain: a.test\n"
                                    "    header: X-A\n"
                                    "    format: \"pre {value} post\"\n"
                                    "    value: abcd\n"
                                    "    upgrade_http: true\n");
    d = dec(r, "a.test", 80, "GET", "/");
    assert_int_equal(pd_gw_credential_render(d.credential, buf, sizeof buf), 13);
    assert_string_equal(buf, "pre abcd post");
    pd_gw_policy_unref(r);
    pd_gw_policy_unref(q);
    pd_gw_policy_unref(p);
}

static void test_rate_and_budget_rules(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n"
                                    "  - host: \"*.example.com\"\n"
                                    "  - host: other.test\n"
                                    "  - cidr: 151.101.0.0/16\n"
                                    "rate_limits:\n"
                                    "  - domain: \"*.example.com\"\n"
                                    "    requests_per_minute: 60\n"
                                    "  - domain: \"*.api.example.com\"\n"
                                    "    requests_per_minute: 30\n"
                                    "    burst_size: 3\n"
                                    "  - domain: v1.api.example.com\n"
                                    "    requests_per_minute: 10\n"
                                    "  - domain: default\n"
                                    "    requests_per_minute: 1000\n"
                                    "    burst_size: 100\n"
                                    "budgets:\n"
                                    "  - domain: \"*.Example.com\"\n"
                                    "    bytes_sent_per_hour: 1000\n");
    struct pd_gw_decision d = dec(p, "www.example.com", 443, NULL, NULL);
    assert_string_equal(d.rate->key, "*.example.com");
    assert_int_equal(d.rate->requests_per_minute, 60);
    assert_int_equal(d.rate->burst_size, 10);
    assert_string_equal(d.rate->where, "p.yaml:6:5");
    assert_string_equal(d.budget->key, "*.example.com");
    assert_int_equal(d.budget->bytes_sent_per_hour, 1000);
    assert_int_equal(d.budget->bytes_received_per_hour, 0);
    d = dec(p, "x.api.example.com", 443, NULL, NULL);
    assert_string_equal(d.rate->key, "*.api.example.com");
    assert_int_equal(d.rate->burst_size, 3);
    d = dec(p, "v1.api.example.com", 443, NULL, NULL);
    assert_string_equal(d.rate->key, "v1.api.example.com");
    d = dec(p, "other.test", 443, NULL, NULL);
    assert_string_equal(d.rate->key, "default");
    assert_int_equal(d.rate->burst_size, 100);
    assert_null(d.budget);
    d = dec_ip(p, "151.101.1.7", 443, NULL, NULL);
    assert_string_equal(d.rate->key, "default");
    assert_null(d.budget);
    pd_gw_policy_unref(p);

    p = policy("allow:\n  - host: a.test\n");
    d = dec(p, "a.test", 443, NULL, NULL);
    expect_allowed(d, "a.test");
    assert_null(d.rate);
    assert_null(d.budget);
    pd_gw_policy_unref(p);
}

static void test_decide_address(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy("allow:\n  - host: pub.test\n  - host: priv.test\n"
                                    "    allow_private: true\n");
    struct pd_addr lo, meta, pub;
    assert_true(pd_ip_parse("127.0.0.1", 9, &lo, NULL));
    assert_true(pd_ip_parse("169.254.169.254", 15, &meta, NULL));
    assert_true(pd_ip_parse("93.184.216.34", 13, &pub, NULL));
    struct pd_gw_decision d = dec(p, "pub.test", 443, NULL, NULL);
    assert_true(pd_gw_decide_address(&d, &pub));
    assert_true(d.allowed);
    assert_false(pd_gw_decide_address(&d, &meta));
    expect_denied(d, "private_address_not_allowed",
                  "pub.test resolved to 169.254.169.254, which is not a public address "
                  "(link-local,metadata): rule 'pub.test' (p.yaml:2:5) does not set allow_private");
    assert_false(pd_gw_decide_address(&d, &pub)); /* stays denied */
    d = dec(p, "priv.test", 443, NULL, NULL);
    assert_true(pd_gw_decide_address(&d, &lo));
    assert_true(pd_gw_decide_address(&d, &meta));
    pd_gw_policy_unref(p);
}

/* ---- config errors ---- */

static void test_errors_allow(void **state)
{
    (void)state;
    expect_error("allow:\n  - host: a.test\n  - host: b.test\n  - host: A.TEST.\n",
                 "p.yaml:4:11: allow[2].host: 'a.test' duplicates allow[0] at p.yaml:2:5; only "
                 "the most specific rule is consulted, so merge the two entries into one");
    expect_error("allow:\n  - cidr: 10.0.0.0/8\n  - cidr: 10.0.0.0/8\n",
                 "p.yaml:3:11: allow[1].cidr: '10.0.0.0/8' duplicates allow[0] at p.yaml:2:5; "
                 "only the most specific rule is consulted, so merge the two entries into one");
    expect_error("allow:\n  - host: \"*.com\"\n",
                 "p.yaml:2:11: allow[0].host: domain pattern '*.com' would match a whole "
                 "top-level domain; a wildcard needs a suffix of at least two labels (e.g. "
                 "'*.example.com')");
    expect_error("allow:\n  - host: \"*\"\n",
                 "p.yaml:2:11: allow[0].host: domain pattern '*' would match every host; list "
                 "the domains instead (e.g. '*.example.com')");
    expect_error("allow:\n  - host: 10.0.0.1\n",
                 "p.yaml:2:11: allow[0].host: domain pattern '10.0.0.1' is an IP address "
                 "(10.0.0.1); use an IP/CIDR rule for addresses");
    expect_error("allow:\n  - host: x.devbox.local\n",
                 "p.yaml:2:11: allow[0].host: names under devbox.local are reserved for "
                 "credential aliases (set 'alias' on a credential instead)");
    expect_error("allow:\n  - host: a.test\n    cidr: 10.0.0.0/8\n",
                 "p.yaml:2:5: allow[0]: expected exactly one of 'host' (a domain pattern) or "
                 "'cidr' (an IP block), got both");
    expect_error("allow:\n  - ports: [443]\n",
                 "p.yaml:2:5: allow[0]: expected exactly one of 'host' (a domain pattern) or "
                 "'cidr' (an IP block), got neither");
    expect_error("allow:\n  - host: a.test\n    ports: [0]\n",
                 "p.yaml:3:13: allow[0].ports[0]: expected an integer between 1 and 65535, got 0");
    expect_error("allow:\n  - host: a.test\n    ports: [443, 65536]\n",
                 "p.yaml:3:18: allow[0].ports[1]: expected an integer between 1 and 65535, got "
                 "65536");
    expect_error("allow:\n  - host: a.test\n    ports: [443, 80, 443]\n",
                 "p.yaml:3:12: allow[0].ports: items 0 and 2 are the same; list each value once");
    expect_error("allow:\n  - host: a.test\n    ports: []\n",
                 "p.yaml:3:12: allow[0].ports: expected an array with 1 to 64 items, got 0 items");
    expect_error("allow:\n  - cidr: 10.0.0.1/8\n",
                 "p.yaml:2:11: allow[0].cidr: CIDR '10.0.0.1/8': host bits are set after the /8 "
                 "prefix (did you mean 10.0.0.0/8?)");
    expect_error("allow:\n  - cidr: \"::ffff:10.0.0.0/104\"\n",
                 "p.yaml:2:11: allow[0].cidr: IPv4-mapped IPv6 blocks never match: the gateway "
                 "unmaps ::ffff:a.b.c.d to a.b.c.d first; write the IPv4 block instead");
    expect_error("allow:\n  - host: a.test\n    methods: [get]\n",
                 "p.yaml:3:15: allow[0].methods[0]: expected an upper-case method token such as "
                 "GET or POST (methods are case-sensitive)");
    expect_error("allow:\n  - host: a.test\n    paths: [v1]\n",
                 "p.yaml:3:13: allow[0].paths[0]: expected a path prefix starting with '/' "
                 "(printable ASCII without spaces, '?', '#' or '\\')");
    expect_error("allow:\n  - host: a.test\n    paths: [\"/v1/../admin\"]\n",
                 "p.yaml:3:13: allow[0].paths[0]: a path prefix may not contain '.' or '..' "
                 "segments or encoded '.', '/' or '\\' (requests with them never match a path "
                 "rule)");
    expect_error("allow:\n  - host: a.test\n    allow_privat: true\n",
                 "p.yaml:3:5: allow[0]: unknown key 'allow_privat' (did you mean 'allow_private'? "
                 "expected one of: host, cidr, ports, methods, paths, allow_private)");
}

static void test_errors_top_level(void **state)
{
    (void)state;
    expect_error("alow:\n  - host: a.test\n",
                 "p.yaml:1:1: unknown top-level key 'alow' (did you mean 'allow'? expected one of: "
                 "sandbox_id, listen, admin_listen, allow, credentials, rate_limits, budgets, "
                 "state_file, upstream, tls, limits, dns, sandbox)");
    expect_error("sandbox_id: \"a b\"\n",
                 "p.yaml:1:13: sandbox_id: expected letters, digits, '.', '_' or '-' only");
    expect_error("listen: [\"localhost:3128\"]\n",
                 "p.yaml:1:10: listen[0]: expected ADDR:PORT with a numeric address "
                 "(\"127.0.0.1:3128\", \"[::1]:3128\"): listen address 'localhost:3128': "
                 "'localhost' is not a numeric IPv4 address (host names are not resolved; use "
                 "e.g. 127.0.0.1 or [::1])");
    /* Found by the fuzzer: the listen parser quotes its input raw, so odd bytes stop earlier. */
    expect_error("admin_listen: \"127.0.0.\\t[9901\"\n",
                 "p.yaml:1:15: admin_listen: expected ADDR:PORT with a numeric address "
                 "(\"127.0.0.1:3128\", \"[::1]:3128\"): printable ASCII without spaces only");
    expect_error("limits:\n  max_head: 10\n",
                 "p.yaml:2:13: limits.max_head: expected an integer between 1024 and 1048576, got "
                 "10");
    expect_error("rate_limits:\n  - domain: default\n    requests_per_minute: 1\n"
                 "  - domain: default\n    requests_per_minute: 2\n",
                 "p.yaml:4:13: rate_limits[1].domain: 'default' duplicates rate_limits[0] at "
                 "p.yaml:2:5");
    expect_error("rate_limits:\n  - domain: a.test\n    requests_per_minute: 0\n",
                 "p.yaml:3:26: rate_limits[0].requests_per_minute: expected an integer between 1 "
                 "and 1000000, got 0");
    expect_error("budgets:\n  - domain: \"*.a.test\"\n    bytes_sent_per_hour: 1\n"
                 "  - domain: \"*.A.TEST\"\n    bytes_sent_per_hour: 2\n",
                 "p.yaml:4:13: budgets[1].domain: '*.a.test' duplicates budgets[0] at p.yaml:2:5");
    expect_error("budgets:\n  - domain: a.test\n",
                 "p.yaml:2:5: budgets[0]: missing required key 'bytes_sent_per_hour'");
    expect_error("upstream:\n  hosts:\n    origin.test: [\"127.1\"]\n",
                 "p.yaml:3:19: upstream.hosts[\"origin.test\"][0]: expected an IP address (a.b.c.d "
                 "or IPv6): IPv4 address '127.1': expected 4 decimal parts a.b.c.d, found 2");
    expect_error("upstream:\n  hosts:\n    origin.test: [\"127.0.0.1\"]\n"
                 "    ORIGIN.test.: [\"127.0.0.2\"]\n",
                 "p.yaml:4:5: upstream.hosts[\"ORIGIN.test.\"]: 'ORIGIN.test.' is listed twice "
                 "(both spellings mean 'origin.test'); keep one entry");
    expect_error("[]\n", "p.yaml:1:1: expected an object at the top level, got an array");
    /* JSON positions work the same way. */
    expect_error_as("p.json", "{\"allow\": [{\"host\": \"a.test\"},\n {\"host\": \"a.test\"}]}",
                    "p.json:2:11: allow[1].host: 'a.test' duplicates allow[0] at p.json:1:12; only "
                    "the most specific rule is consulted, so merge the two entries into one");
    expect_error_as(
        "p.json", "{\"allow\": [{\"host\": \"a.test\", \"ports\": [80, 0]}]}",
        "p.json:1:45: allow[0].ports[1]: expected an integer between 1 and 65535, got 0");
}

#define CRED_HEAD          \
    "credentials:\n"       \
    "  - name: K\n"        \
    "    domain: a.test\n" \
    "    header: Authorization\n"

static void test_errors_credentials(void **state)
{
    (void)state;
    expect_error(CRED_HEAD "    format: \"Bearer\"\n    value_env: PD_TEST_GW_OPENAI\n",
                 "p.yaml:5:13: credentials[0].format: expected a string with 7 to 256 characters, "
                 "got a string of 6 characters");
    expect_error(CRED_HEAD "    format: \"Bearer {val}\"\n    value_env: PD_TEST_GW_OPENAI\n",
                 "p.yaml:5:13: credentials[0].format: expected a header value format containing "
                 "\"{value}\" exactly once, such as \"Bearer {value}\"");
    expect_error(CRED_HEAD "    format: \"{value}{value}\"\n    value_env: PD_TEST_GW_OPENAI\n",
                 "p.yaml:5:13: credentials[0].format: expected a header value format containing "
                 "\"{value}\" exactly once, such as \"Bearer {value}\"");
    expect_error(CRED_HEAD "    format: \"x\\r\\n{value}\"\n    value_env: PD_TEST_GW_OPENAI\n",
                 "p.yaml:5:13: credentials[0].format: a header value format may contain printable "
                 "ASCII and tabs only (no CR, LF or other control characters)");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    value_env: PD_TEST_GW_UNSET\n",
                 "p.yaml:6:16: credentials[0].value_env: environment variable PD_TEST_GW_UNSET is "
                 "not set (credential 'K')");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    value_env: PD_TEST_GW_EMPTY\n",
                 "p.yaml:6:16: credentials[0].value_env: environment variable PD_TEST_GW_EMPTY is "
                 "empty (credential 'K')");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    value_env: 1BAD\n",
                 "p.yaml:6:16: credentials[0].value_env: expected an environment variable name "
                 "([A-Za-z_][A-Za-z0-9_]*)");
    expect_error(CRED_HEAD "    format: \"{value}\"\n",
                 "p.yaml:2:5: credentials[0]: expected exactly one of 'value_env', 'value_file' or "
                 "'value', got none");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    value: abcd\n    value_env: X\n",
                 "p.yaml:2:5: credentials[0]: expected exactly one of 'value_env', 'value_file' or "
                 "'value', got several");
    expect_error("credentials:\n  - name: K\n    domain: a.test\n    header: Host\n"
                 "    format: \"{value}\"\n    value: abcd\n",
                 "p.yaml:4:13: credentials[0].header: header 'Host' controls routing or message "
                 "framing and cannot carry a credential");
    expect_error("credentials:\n  - name: K\n    domain: a.test\n    header: \"X Key\"\n"
                 "    format: \"{value}\"\n    value: abcd\n",
                 "p.yaml:4:13: credentials[0].header: expected a header field name (letters, "
                 "digits and !#$%&'*+-.^_`|~)");
    expect_error("credentials:\n  - name: GH\n    domain: \"*.github.com\"\n    header: X\n"
                 "    format: \"{value}\"\n    alias: github\n    value: abcd\n",
                 "p.yaml:6:12: credentials[0].alias: an alias needs an exact domain (it names one "
                 "host), but domain is the wildcard '*.github.com'");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    alias: Open.AI\n    value: abcd\n",
                 "p.yaml:6:12: credentials[0].alias: expected one lower-case DNS label ([a-z0-9-], "
                 "not starting or ending with '-'), such as \"openai\"; it is used as "
                 "<alias>.devbox.local");
    const char dup_alias[] = CRED_HEAD "    format: \"{value}\"\n    alias: one\n    value: abcd\n"
                                       "  - name: L\n    domain: b.test\n    header: X\n"
                                       "    format: \"{value}\"\n    alias: one\n    value: efgh\n";
    expect_error(dup_alias, "p.yaml:12:12: credentials[1].alias: alias 'one' is already used by "
                            "credential 'K' (p.yaml:2:5)");
    const char dup_name[] = CRED_HEAD "    format: \"{value}\"\n    value: abcd\n"
                                      "  - name: K\n    domain: b.test\n    header: X\n"
                                      "    format: \"{value}\"\n    value: efgh\n";
    expect_error(dup_name, "p.yaml:7:11: credentials[1].name: credential name 'K' is already used "
                           "by credentials[0] at p.yaml:2:5");
    const char dup_domain[] = CRED_HEAD "    format: \"{value}\"\n    value: abcd\n"
                                        "  - name: L\n    domain: A.test.\n    header: X\n"
                                        "    format: \"{value}\"\n    value: efgh\n";
    expect_error(dup_domain, "p.yaml:8:13: credentials[1].domain: credential 'L' applies to "
                             "'a.test' like credential 'K' (p.yaml:2:5); at most one credential "
                             "per domain pattern");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    value: abc\n",
                 "p.yaml:6:12: credentials[0].value: the value of credential 'K' from inline value "
                 "is shorter than 4 bytes (too short to be a secret or to be scrubbed from logs)");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    value: \"abc\\r\\ndef\"\n",
                 "p.yaml:6:12: credentials[0].value: the value of credential 'K' from inline value "
                 "contains a control character, a non-ASCII byte or a leading/trailing space "
                 "(values must be printable ASCII); first bad byte at offset 3");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    value: 12345678\n",
                 "p.yaml:6:12: credentials[0].value: expected a string (quote the value); the "
                 "value is not shown");
    expect_error(CRED_HEAD "    format: \"{value}\"\n    valeu: abcd\n",
                 "p.yaml:6:5: credentials[0]: unknown key 'valeu' (did you mean 'value'? expected "
                 "one of: name, domain, header, format, alias, value_env, value_file, value, "
                 "upgrade_http)");
}

static void test_errors_value_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/pd-gw-policy-XXXXXX";
    char path[256], cfg[1024];
    struct pd_err err;
    assert_non_null(mkdtemp(dir));

    snprintf(path, sizeof path, "%s/secret", dir);
    write_file(path, "file-secret-value\n", 0644);
    snprintf(cfg, sizeof cfg, CRED_HEAD "    format: \"{value}\"\n    value_file: %s\n", path);
    struct pd_gw_policy *p = compile_text("p.yaml", cfg, &err);
    assert_null(p);
    char want[1024];
    snprintf(want, sizeof want,
             "p.yaml:6:17: credentials[0].value_file: %s (credential 'K') is readable or writable "
             "by group or others (mode 0644); run: chmod 600 %s",
             path, path);
    assert_string_equal(err.msg, want);
    assert_null(strstr(err.msg, "file-secret-value"));

    /* Mode 0600: loads; one trailing newline ("\r\n" too) is stripped. */
    assert_int_equal(chmod(path, 0600), 0);
    p = compile_text("p.yaml", cfg, &err);
    if (!p)
        fail_msg("%s", err.msg);
    struct pd_gw_decision d = dec(p, "a.test", 80, "GET", "/");
    assert_null(d.credential); /* no upgrade_http */
    char *s = describe_text(p);
    char needle[512];
    snprintf(needle, sizeof needle, "\"source\": {\"file\": \"%s\"}", path);
    assert_non_null(strstr(s, needle));
    assert_null(strstr(s, "file-secret-value"));
    free(s);
    assert_true(scrubbed("file-secret-value"));
    pd_gw_policy_unref(p);
    assert_false(scrubbed("file-secret-value"));

    /* Relative to the config file's directory; CRLF stripped. */
    write_file(path, "crlf-secret\r\n", 0600);
    snprintf(cfg, sizeof cfg,
             "allow:\n  - host: a.test\n" CRED_HEAD "    format: \"<{value}>\"\n"
             "    value_file: secret\n    upgrade_http: true\n");
    char cfgpath[300];
    snprintf(cfgpath, sizeof cfgpath, "%s/gw.yaml", dir);
    write_file(cfgpath, cfg, 0600);
    p = pd_gw_policy_load(cfgpath, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    d = dec(p, "a.test", 80, "GET", "/");
    char buf[64];
    assert_int_equal(pd_gw_credential_render(d.credential, buf, sizeof buf), 13);
    assert_string_equal(buf, "<crlf-secret>");
    pd_gw_policy_unref(p);

    /* Missing file, directory, too short, non-printable content. */
    snprintf(cfg, sizeof cfg, CRED_HEAD "    format: \"{value}\"\n    value_file: %s/nope\n", dir);
    assert_null(compile_text("p.yaml", cfg, &err));
    snprintf(want, sizeof want,
             "p.yaml:6:17: credentials[0].value_file: cannot open %s/nope for credential 'K': No "
             "such file or directory",
             dir);
    assert_string_equal(err.msg, want);
    snprintf(cfg, sizeof cfg, CRED_HEAD "    format: \"{value}\"\n    value_file: %s\n", dir);
    assert_null(compile_text("p.yaml", cfg, &err));
    assert_non_null(strstr(err.msg, "(credential 'K') is "));
    write_file(path, "ab\n", 0600);
    snprintf(cfg, sizeof cfg, CRED_HEAD "    format: \"{value}\"\n    value_file: %s\n", path);
    assert_null(compile_text("p.yaml", cfg, &err));
    snprintf(want, sizeof want,
             "p.yaml:6:17: credentials[0].value_file: the value of credential 'K' from file %s is "
             "shorter than 4 bytes (too short to be a secret or to be scrubbed from logs)",
             path);
    assert_string_equal(err.msg, want);
    write_file(path, "secret-with\ttab-SECRETBYTES\n\n", 0600);
    assert_null(compile_text("p.yaml", cfg, &err));
    assert_non_null(strstr(err.msg, "first bad byte at offset 11"));
    assert_null(strstr(err.msg, "SECRETBYTES"));

    unlink(path);
    unlink(cfgpath);
    rmdir(dir);
}

/* ---- secrets ---- */

static void test_secrets_never_shown(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy(aliases_yaml);
    char *s = describe_text(p);
    assert_null(strstr(s, OPENAI_SECRET));
    assert_null(strstr(s, "sk-ant-inline-value"));
    assert_non_null(strstr(s, "\"source\": {\"env\": \"PD_TEST_GW_OPENAI\"}"));
    assert_non_null(strstr(s, "\"source\": \"inline\""));
    assert_non_null(strstr(s, "\"value\": \"[redacted]\""));
    free(s);
    /* Registered for log scrubbing while the policy lives; unregistered when it is freed. */
    assert_true(scrubbed(OPENAI_SECRET));
    assert_true(scrubbed("sk-ant-inline-value"));
    /* Denials name the credential's domain, never its value. */
    struct pd_gw_decision d = dec(p, "openai.devbox.local", 80, "GET", "/v2/");
    assert_string_equal(d.error, "path_not_allowed");
    assert_null(strstr(d.reason, OPENAI_SECRET));
    pd_gw_policy_unref(p);
    assert_false(scrubbed(OPENAI_SECRET));
    assert_false(scrubbed("sk-ant-inline-value"));

    /* Errors after secrets were read never show them, and nothing stays registered. */
    struct pd_err err;
    const char later[] = "credentials:\n"
                         "  - name: A\n    domain: a.test\n    header: X\n    format: \"{value}\"\n"
                         "    value: inline-SECRET-aaaa\n"
                         "  - name: B\n    domain: b.test\n    header: X\n    format: \"{value}\"\n"
                         "    value_env: PD_TEST_GW_OPENAI\n"
                         "  - name: C\n    domain: c.test\n    header: X\n    format: \"{value}\"\n"
                         "    alias: \"*\"\n    value: inline-SECRET-cccc\n";
    assert_null(compile_text("p.yaml", later, &err));
    assert_null(strstr(err.msg, "SECRET"));
    assert_null(strstr(err.msg, OPENAI_SECRET));
    assert_false(scrubbed("inline-SECRET-aaaa"));
    assert_false(scrubbed(OPENAI_SECRET));
    const char dup[] = "credentials:\n"
                       "  - name: A\n    domain: a.test\n    header: X\n    format: \"{value}\"\n"
                       "    value: inline-SECRET-aaaa\n"
                       "  - name: A\n    domain: b.test\n    header: X\n    format: \"{value}\"\n"
                       "    value: inline-SECRET-bbbb\n";
    assert_null(compile_text("p.yaml", dup, &err));
    assert_null(strstr(err.msg, "SECRET"));
    assert_false(scrubbed("inline-SECRET-aaaa"));
}

static void test_reload_shares_secrets(void **state)
{
    (void)state;
    struct pd_err err;
    struct pd_gw_policy *a = pd_gw_policy_load(DATA_DIR "/policy.yaml", NULL, &err);
    assert_non_null(a);
    struct pd_gw_policy *b = pd_gw_policy_load(DATA_DIR "/policy.json", a, &err);
    assert_non_null(b);
    assert_true(scrubbed(OPENAI_SECRET));
    pd_gw_policy_unref(a); /* the running policy goes; b still uses the same values */
    assert_true(scrubbed(OPENAI_SECRET));
    assert_true(scrubbed(GITHUB_SECRET));
    /* A failed reload changes nothing. */
    struct pd_gw_policy *c = pd_gw_policy_compile(NULL, b, &err);
    assert_null(c);
    assert_null(compile_text("p.yaml", "allow: 3\n", &err));
    assert_true(scrubbed(OPENAI_SECRET));
    pd_gw_policy_unref(b);
    assert_false(scrubbed(OPENAI_SECRET));
    assert_false(scrubbed(GITHUB_SECRET));
}

static void test_refcount(void **state)
{
    (void)state;
    struct pd_gw_policy *p = policy(aliases_yaml);
    assert_ptr_equal(pd_gw_policy_ref(p), p);
    assert_ptr_equal(pd_gw_policy_ref(p), p);
    pd_gw_policy_unref(p);
    pd_gw_policy_unref(p);
    expect_allowed(dec(p, "api.openai.com", 443, NULL, NULL), "api.openai.com");
    assert_true(scrubbed(OPENAI_SECRET));
    pd_gw_policy_unref(p); /* the last one: freed (LeakSanitizer checks) */
    assert_false(scrubbed(OPENAI_SECRET));
    assert_null(pd_gw_policy_ref(NULL));
    pd_gw_policy_unref(NULL);
}

static void test_recheck_on_reload(void **state)
{
    (void)state;
    struct pd_gw_policy *old = policy("allow:\n  - host: a.test\n  - host: b.test\n"
                                      "  - host: c.test\n    allow_private: true\n"
                                      "  - cidr: 93.184.216.0/24\n");
    struct pd_gw_policy *neu = policy("allow:\n  - host: a.test\n  - host: b.test\n"
                                      "    ports: [8443]\n  - host: c.test\n");
    struct pd_addr ip, lo, pub;
    assert_true(pd_ip_parse("93.184.216.9", 12, &ip, NULL));
    assert_true(pd_ip_parse("127.0.0.1", 9, &lo, NULL));
    assert_true(pd_ip_parse("93.184.216.34", 13, &pub, NULL));
    struct pd_gw_request tunnels[] = {
        {.host = "a.test", .port = 443, .is_connect = true},
        {.host = "b.test", .port = 443, .is_connect = true},
        {.host = "c.test", .port = 443, .is_connect = true},
        {.addr = &ip, .port = 443, .is_connect = true},
        {.host = "a.test", .port = 80, .method = "GET", .path = "/ws"},
    };
    const struct pd_addr *peers[] = {&pub, &pub, &lo, NULL, &pub};
    const bool still[] = {true, false, false, false, true};
    for (size_t i = 0; i < 5; i++) {
        struct pd_gw_decision d;
        assert_true(pd_gw_policy_recheck(old, &tunnels[i], peers[i], NULL));
        assert_int_equal(pd_gw_policy_recheck(neu, &tunnels[i], peers[i], &d), still[i]);
        assert_int_equal(d.allowed, still[i]);
    }
    struct pd_gw_decision d;
    pd_gw_policy_recheck(neu, &tunnels[1], &pub, &d);
    assert_string_equal(d.reason, "b.test:443 is not allowed: rule 'b.test' (p.yaml:3:5) allows "
                                  "ports 8443");
    pd_gw_policy_recheck(neu, &tunnels[2], &lo, &d);
    assert_string_equal(d.error, "private_address_not_allowed");
    pd_gw_policy_unref(old);
    pd_gw_policy_unref(neu);
}

static void test_schema_documents_every_key(void **state)
{
    (void)state;
    /* Every top-level key of the schema appears in docs/policy.md. */
    FILE *f = fopen(PD_TEST_SRCDIR "/docs/policy.md", "r");
    assert_non_null(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    for (const struct pd_schema_field *fl = pd_gw_policy_schema.fields; fl->key; fl++) {
        char needle[80];
        snprintf(needle, sizeof needle, "`%s`", fl->key);
        if (!strstr(doc, needle))
            fail_msg("docs/policy.md does not document `%s`", fl->key);
        if (fl->child)
            for (const struct pd_schema_field *c = fl->child->fields; c->key; c++) {
                snprintf(needle, sizeof needle, "`%s.%s`", fl->key, c->key);
                if (!strstr(doc, needle))
                    fail_msg("docs/policy.md does not document `%s.%s`", fl->key, c->key);
            }
        if (fl->items && fl->items->child)
            for (const struct pd_schema_field *c = fl->items->child->fields; c->key; c++) {
                snprintf(needle, sizeof needle, "`%s[].%s`", fl->key, c->key);
                if (!strstr(doc, needle))
                    fail_msg("docs/policy.md does not document `%s[].%s`", fl->key, c->key);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_example_yaml_and_json),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_exact_vs_wildcard),
        cmocka_unit_test(test_default_ports),
        cmocka_unit_test(test_methods_and_paths),
        cmocka_unit_test(test_ip_literals),
        cmocka_unit_test(test_empty_allowlist),
        cmocka_unit_test(test_invalid_target),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_credential_selection_and_render),
        cmocka_unit_test(test_rate_and_budget_rules),
        cmocka_unit_test(test_decide_address),
        cmocka_unit_test(test_errors_allow),
        cmocka_unit_test(test_errors_top_level),
        cmocka_unit_test(test_errors_credentials),
        cmocka_unit_test(test_errors_value_file),
        cmocka_unit_test(test_secrets_never_shown),
        cmocka_unit_test(test_reload_shares_secrets),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_recheck_on_reload),
        cmocka_unit_test(test_schema_documents_every_key),
    };
    return cmocka_run_group_tests(tests, setup_env, NULL);
}
