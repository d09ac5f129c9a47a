/* test_run_policy.c - the `sandbox` section of a `paddock run` policy: defaults, every key, errors
 * with file, line, column and path, "~/" expansion, the workspace relative to the policy file, and
 * the gateway accepting the same file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "gateway/policy.h"
#include "sandbox/run_policy.h"

static int load(const char *name, const char *text, struct pd_run_policy *rp, struct pd_err *err)
{
    pd_err_clear(err);
    struct pd_config_doc *doc =
        pd_config_load_buffer(name, text, strlen(text), PD_CONFIG_AUTO, err);
    if (!doc)
        return -1;
    int rc = pd_run_policy_load(doc, "/home/alice", rp, err);
    pd_config_doc_free(doc);
    return rc;
}

static void expect_error(const char *text, const char *want)
{
    struct pd_run_policy rp;
    struct pd_err err;
    if (load("p.yaml", text, &rp, &err) == 0) {
        pd_run_policy_free(&rp);
        fail_msg("expected an error for:\n%s", text);
    }
    if (!strstr(err.msg, want))
        fail_msg("error\n  got:  %s\n  want: ...%s...", err.msg, want);
}

static void test_defaults(void **state)
{
    (void)state;
    struct pd_run_policy rp;
    struct pd_err err;
    assert_int_equal(load("p.yaml", "allow: []\n", &rp, &err), 0);
    assert_null(rp.workspace);
    assert_string_equal(rp.rootfs, "/");
    assert_int_equal(rp.nmasked, 0);
    assert_true(rp.nprotected >= 10);
    assert_string_equal(rp.protected_paths[0], ".git/hooks");
    assert_int_equal(rp.limits.memory_bytes, 4ULL << 30);
    assert_int_equal(rp.limits.pids, 1024);
    assert_int_equal(rp.limits.cpu_millis, 0);
    assert_int_equal(rp.home_size, 512ULL << 20);
    assert_int_equal(rp.tmp_size, 1ULL << 30);
    assert_int_equal(rp.timeout_s, 0);
    assert_string_equal(rp.hostname, "paddock");
    assert_int_equal(rp.nenv, 0);
    assert_int_equal(rp.nbinds, 0);
    pd_run_policy_free(&rp);
}

static void test_every_key(void **state)
{
    (void)state;
    struct pd_run_policy rp;
    struct pd_err err;
    const char *text = "sandbox:\n"
                       "  workspace: proj\n"
                       "  rootfs: /srv/root\n"
                       "  masked_paths: [~/.secret, /opt/keys]\n"
                       "  protected_paths: [Makefile]\n"
                       "  binds:\n"
                       "    - {src: /opt/tool, dst: /opt/tool}\n"
                       "    - {src: /var/cache/x, dst: /var/cache/x, rw: true}\n"
                       "  env: {FOO: bar, EMPTY: \"\"}\n"
                       "  env_pass: [SSH_AUTH_SOCK_NOT]\n"
                       "  limits: {memory: 64M, pids: 32, cpu: 1.5}\n"
                       "  tmpfs: {home: 16M, tmp: 1048576}\n"
                       "  timeout: 30\n"
                       "  hostname: box-1\n";
    assert_int_equal(load("/etc/pol/p.yaml", text, &rp, &err), 0);
    assert_string_equal(rp.workspace, "/etc/pol/proj");
    assert_string_equal(rp.rootfs, "/srv/root");
    assert_int_equal(rp.nmasked, 2);
    assert_string_equal(rp.masked[0], "/home/alice/.secret");
    assert_string_equal(rp.masked[1], "/opt/keys");
    assert_int_equal(rp.nprotected, 1);
    assert_string_equal(rp.protected_paths[0], "Makefile");
    assert_int_equal(rp.nbinds, 2);
    assert_false(rp.binds[0].rw);
    assert_true(rp.binds[1].rw);
    assert_string_equal(rp.binds[1].dst, "/var/cache/x");
    assert_int_equal(rp.nenv, 2);
    assert_int_equal(rp.nenv_pass, 1);
    assert_int_equal(rp.limits.memory_bytes, 64ULL << 20);
    assert_int_equal(rp.limits.pids, 32);
    assert_int_equal(rp.limits.cpu_millis, 1500);
    assert_int_equal(rp.home_size, 16ULL << 20);
    assert_int_equal(rp.tmp_size, 1048576);
    assert_int_equal(rp.timeout_s, 30);
    assert_string_equal(rp.hostname, "box-1");
    pd_run_policy_free(&rp);

    /* "1500m" millicpus, memory 0 = none, protected list emptied */
    assert_int_equal(load("p.yaml",
                          "sandbox: {limits: {cpu: \"1500m\", memory: 0}, protected_paths: []}\n",
                          &rp, &err),
                     0);
    assert_int_equal(rp.limits.cpu_millis, 1500);
    assert_int_equal(rp.limits.memory_bytes, 0);
    assert_int_equal(rp.nprotected, 0);
    pd_run_policy_free(&rp);
}

static void test_errors_name_line_and_key(void **state)
{
    (void)state;
    expect_error("sandbox:\n  limts: {}\n",
                 "p.yaml:2:3: sandbox: unknown key 'limts' (did you mean 'limits'?");
    expect_error("sandbox:\n  limits: {memory: lots}\n", "p.yaml:2:20: sandbox.limits.memory:");
    expect_error("sandbox:\n  limits: {pids: -1}\n", "sandbox.limits.pids");
    expect_error("sandbox:\n  tmpfs: {tmp: 10K}\n", "at least 1M");
    expect_error("sandbox:\n  protected_paths: [../x]\n", "leaves the workspace");
    expect_error("sandbox:\n  protected_paths: [/etc/passwd]\n", "relative to the workspace");
    expect_error("sandbox:\n  masked_paths: [relative]\n", "absolute path or one starting with ~/");
    expect_error("sandbox:\n  env: {\"BAD-NAME\": x}\n", "not an environment variable name");
    expect_error("sandbox:\n  binds: [{src: /a}]\n", "missing required key 'dst'");
    expect_error("sandbox:\n  hostname: \"a b\"\n", "host name");
    expect_error("sandbox: [1]\n", "p.yaml:1:10: sandbox: expected an object");
    expect_error("sandbox:\n  timeout: 1.5\n", "sandbox.timeout");
}

static void test_gateway_accepts_the_same_file(void **state)
{
    (void)state;
    const char *text = "allow:\n  - host: api.example.com\nsandbox:\n  limits: {pids: 10}\n";
    struct pd_err err;
    struct pd_config_doc *doc =
        pd_config_load_buffer("p.yaml", text, strlen(text), PD_CONFIG_AUTO, &err);
    assert_non_null(doc);
    struct pd_gw_policy *p = pd_gw_policy_compile(doc, NULL, &err);
    if (!p)
        fail_msg("%s", err.msg);
    pd_gw_policy_unref(p);
    pd_config_doc_free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_gateway_accepts_the_same_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
