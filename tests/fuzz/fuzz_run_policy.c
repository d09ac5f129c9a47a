/*
 * fuzz_run_policy.c - libFuzzer target for the `sandbox` section of a `paddock run` policy
 * (src/sandbox/run_policy.c, through core/schema.c's pd_schema_validate_member).
 *
 * The input is loaded as YAML and as JSON (from an exact-size heap copy) and its `sandbox` member
 * validated and compiled; nothing is read from the filesystem. Invariants:
 *  - a refused section has a non-empty error that starts with the input's name and holds no
 *    control characters;
 *  - an accepted one is complete and within the documented bounds: rootfs, every masked path and
 *    bind absolute; masked "~/" paths expanded under the given home; protected paths relative with
 *    no ".." component; tmpfs sizes at least 1 MiB; pids at most PD_LIMITS_PIDS_MAX; cpu 0 or
 * within PD_LIMITS_CPU_MIN..MAX; a non-empty host name; every env name non-empty;
 *  - loading the same document twice gives the same result.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "sandbox/run_policy.h"

#define HOME "/home/fuzz"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pd_log_set_level(PD_LOG_OFF);
    return 0;
}

static void check_error(const struct pd_err *e, const char *name)
{
    if (!e->msg[0] || strncmp(e->msg, name, strlen(name)) != 0)
        abort();
    for (const char *p = e->msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            abort();
}

static void check_policy(const struct pd_run_policy *rp)
{
    if (!rp->rootfs || rp->rootfs[0] != '/' || !rp->hostname || !rp->hostname[0])
        abort();
    for (size_t i = 0; i < rp->nmasked; i++)
        if (!rp->masked[i] || rp->masked[i][0] != '/')
            abort();
    for (size_t i = 0; i < rp->nprotected; i++) {
        const char *s = rp->protected_paths[i];
        if (!s || !s[0] || s[0] == '/' || !strcmp(s, "..") || !strncmp(s, "../", 3) ||
            strstr(s, "/../") || (strlen(s) >= 3 && !strcmp(s + strlen(s) - 3, "/..")))
            abort();
    }
    for (size_t i = 0; i < rp->nbinds; i++)
        if (rp->binds[i].src[0] != '/' || rp->binds[i].dst[0] != '/')
            abort();
    for (size_t i = 0; i < rp->nenv; i++)
        if (!rp->env[i].name[0] || !rp->env[i].value)
            abort();
    if (rp->home_size < (1u << 20) || rp->tmp_size < (1u << 20) ||
        rp->limits.pids > PD_LIMITS_PIDS_MAX ||
        (rp->limits.cpu_millis &&
         (rp->limits.cpu_millis < PD_LIMITS_CPU_MIN || rp->limits.cpu_millis > PD_LIMITS_CPU_MAX)))
        abort();
}

static void one(const char *name, const char *buf, size_t size, enum pd_config_format fmt)
{
    struct pd_err err;
    for (int round = 0; round < 2; round++) {
        pd_err_clear(&err);
        struct pd_config_doc *doc = pd_config_load_buffer(name, buf, size, fmt, &err);
        if (!doc)
            return;
        struct pd_run_policy rp;
        int rc = pd_run_policy_load(doc, HOME, &rp, &err);
        pd_config_doc_free(doc);
        if (rc != 0) {
            check_error(&err, name);
            if (round == 1)
                return;
            continue;
        }
        check_policy(&rp);
        pd_run_policy_free(&rp);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    one("p.yaml", buf, size, PD_CONFIG_YAML);
    one("p.json", buf, size, PD_CONFIG_JSON);
    free(buf);
    return 0;
}
