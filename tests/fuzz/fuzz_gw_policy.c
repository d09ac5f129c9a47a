/*
 * fuzz_gw_policy.c - libFuzzer target for the gateway policy compiler and the decision function.
 *
 * The input is loaded as YAML and as JSON (from an exact-size heap copy). Documents that name a
 * value_file, or a value_env other than PD_FUZZ_SECRET (set at start-up to a fixed harmless
 * value), are skipped: the fuzzer reads no files and no other environment. Every other document is
 * compiled; invariants:
 *  - a refused config has a non-empty error that starts with the input's name and holds no control
 *    characters, nor the PD_FUZZ_SECRET value (unless the input spells it, in any case: it may
 *    be a domain, shown case-folded);
 *  - a compiled policy describes every credential value as "[redacted]"; the same document compiles
 *    again with the first policy as `prev`; once both are released (and after a refused config)
 *    no value stays registered for log scrubbing;
 *  - decisions for fixed hosts, addresses, ports, methods and paths are well-formed and
 *    deterministic: allowed ones have status 0, a rule and its position; denied ones 400/403, an
 *    error code, a reason without control characters, and no credential, rate or budget rule; a
 *    credential comes only with upstream TLS and renders to exactly render_len bytes; a resolved
 *    loopback address passes only with allow_private.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "gateway/policy.h"

#define FUZZ_SECRET "zz-fuzz-secret-0123" /* starts with a byte no escape sequence ends in */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("PD_FUZZ_SECRET", FUZZ_SECRET, 1);
    pd_log_set_level(PD_LOG_OFF);
    return 0;
}

/* False when the document asks for a file or another environment variable. */
static bool acceptable(const json_t *node)
{
    if (json_is_object(node)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)node, key, v)
        {
            if (strcmp(key, "value_file") == 0)
                return false;
            if (strcmp(key, "value_env") == 0 &&
                !(json_is_string(v) && strcmp(json_string_value(v), "PD_FUZZ_SECRET") == 0))
                return false;
            if (!acceptable(v))
                return false;
        }
    } else if (json_is_array(node)) {
        for (size_t i = 0; i < json_array_size(node); i++)
            if (!acceptable(json_array_get(node, i)))
                return false;
    }
    return true;
}

/* No control characters; the fixed secret only when the input itself spells it (it may then be a
 * domain or a format text, which are shown). */
static void check_text(const char *s, bool secret_in_input)
{
    for (const char *q = s; *q; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q == 0x7f)
            abort();
    if (!secret_in_input && strstr(s, FUZZ_SECRET))
        abort();
}

/* Every credential in a description shows "[redacted]" as its value. */
static void check_describe(const json_t *j, bool secret_in_input)
{
    const json_t *creds = json_object_get(j, "credentials");
    for (size_t i = 0; i < json_array_size(creds); i++) {
        const json_t *v = json_object_get(json_array_get(creds, i), "value");
        if (!json_is_string(v) || strcmp(json_string_value(v), "[redacted]") != 0)
            abort();
    }
    char *s = json_dumps(j, JSON_COMPACT);
    if (s && !secret_in_input && strstr(s, FUZZ_SECRET))
        abort();
    free(s);
}

static bool scrubbed(const char *value)
{
    char line[512];
    const struct pd_log_field f[] = {PD_LSTR("m", value)};
    pd_log_format(line, sizeof line, 0, PD_LOG_INFO, "fuzz", "probe", f, 1);
    return strstr(line, value) == NULL;
}

static void check_decision(const struct pd_gw_policy *p, const struct pd_gw_request *rq, bool sin)
{
    struct pd_gw_decision d, again;
    pd_gw_decide(p, rq, &d);
    pd_gw_decide(p, rq, &again);
    if (d.allowed != again.allowed || d.status != again.status || d.rule != again.rule ||
        d.credential != again.credential || strcmp(d.reason, again.reason) != 0)
        abort();
    if (d.allowed) {
        if (d.status != 0 || d.error || d.reason[0] || !d.rule || !d.rule_where ||
            d.upstream_port == 0)
            abort();
    } else {
        if ((d.status != 403 && d.status != 400) || !d.error || !d.reason[0] || d.credential ||
            d.rate || d.budget)
            abort();
        /* The reason may echo the request's own path; the fixed paths hold no secrets. */
        check_text(d.reason, sin);
    }
    if (d.credential) {
        char buf[PD_GW_SECRET_MAX + 512];
        if (!d.upstream_tls)
            abort();
        size_t n = pd_gw_credential_render_len(d.credential);
        long k = pd_gw_credential_render(d.credential, buf, sizeof buf);
        if (k < 0 || (size_t)k != n || strlen(buf) != n)
            abort();
        explicit_bzero(buf, sizeof buf);
    }
    if (d.rate && (d.rate->requests_per_minute < 1 || d.rate->burst_size < 1 || !d.rate->key))
        abort();
    if (d.budget && (d.budget->bytes_sent_per_hour < 1 || !d.budget->key))
        abort();
    struct pd_addr lo;
    pd_ip_parse("127.0.0.1", 9, &lo, NULL);
    if (pd_gw_decide_address(&d, &lo) && !d.allow_private && rq->host)
        abort();
    if (!d.allowed)
        check_text(d.reason, sin);
}

static void decisions(const struct pd_gw_policy *p, bool sin)
{
    static const char *const hosts[] = {"example.com",    "www.example.com", "evilexample.com",
                                        "api.openai.com", "a.b.github.com",  "openai.devbox.local",
                                        "x.devbox.local", "devbox.local",    "origin.test",
                                        "localhost"};
    static const char *const addrs[] = {"127.0.0.1", "93.184.216.34", "::ffff:10.0.0.1",
                                        "2606:4700::1", "169.254.169.254"};
    static const uint16_t ports[] = {80, 443, 8080};
    for (size_t h = 0; h < sizeof hosts / sizeof hosts[0]; h++)
        for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) {
            struct pd_gw_request c = {.host = hosts[h], .port = ports[i], .is_connect = true};
            struct pd_gw_request g = {
                .host = hosts[h], .port = ports[i], .method = "GET", .path = "/v1/models?x=1"};
            struct pd_gw_request d = {
                .host = hosts[h], .port = ports[i], .method = "DELETE", .path = "/v1/../admin"};
            check_decision(p, &c, sin);
            check_decision(p, &g, sin);
            check_decision(p, &d, sin);
        }
    for (size_t a = 0; a < sizeof addrs / sizeof addrs[0]; a++) {
        struct pd_addr ad;
        if (!pd_ip_parse(addrs[a], strlen(addrs[a]), &ad, NULL))
            abort();
        struct pd_gw_request c = {.addr = &ad, .port = 443, .is_connect = true};
        struct pd_gw_request g = {.addr = &ad, .port = 80, .method = "GET", .path = "/"};
        check_decision(p, &c, sin);
        check_decision(p, &g, sin);
    }
    const struct pd_addr *addrs_out;
    size_t n = pd_gw_policy_upstream_hosts(p, "origin.test", &addrs_out);
    if ((n == 0) != (addrs_out == NULL))
        abort();
}

/* Names are case-folded before they are shown, so look for the secret in any case. */
static bool contains_nocase(const char *in, size_t size, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= size; i++)
        if (strncasecmp(in + i, needle, n) == 0)
            return true;
    return false;
}

static void run(const char *name, const char *in, size_t size, enum pd_config_format fmt)
{
    struct pd_err err;
    bool sin = contains_nocase(in, size, FUZZ_SECRET);
    struct pd_config_doc *doc = pd_config_load_buffer(name, in, size, fmt, &err);
    if (!doc)
        return;
    if (!acceptable(pd_config_root(doc))) {
        pd_config_doc_free(doc);
        return;
    }
    struct pd_gw_policy *p = pd_gw_policy_compile(doc, NULL, &err);
    if (!p) {
        if (err.msg[0] == '\0' || strncmp(err.msg, name, strlen(name)) != 0)
            abort();
        check_text(err.msg, sin);
        if (scrubbed(FUZZ_SECRET))
            abort(); /* a failed compile left a registration behind */
        pd_config_doc_free(doc);
        return;
    }
    json_t *j = pd_gw_policy_describe(p);
    if (j)
        check_describe(j, sin);
    json_decref(j);
    decisions(p, sin);
    struct pd_gw_policy *q = pd_gw_policy_compile(doc, p, &err);
    if (!q)
        abort(); /* the same document compiles again */
    pd_gw_policy_unref(p);
    decisions(q, sin);
    pd_gw_policy_unref(pd_gw_policy_ref(q));
    pd_gw_policy_unref(q);
    if (scrubbed(FUZZ_SECRET))
        abort(); /* released policies left a registration behind */
    pd_config_doc_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    run("fuzz.yaml", in, size, PD_CONFIG_YAML);
    run("fuzz.json", in, size, PD_CONFIG_JSON);
    free(in);
    return 0;
}
