/*
 * run_policy.h - the `sandbox` section of a `paddock run` policy file: its schema, defaults and
 * the compiled settings. The rest of the file is the gateway's (gateway/policy.h); the gateway's
 * schema declares `sandbox` as a section another component validates (core/schema.h,
 * pd_schema_validate_member), so one file serves both and every key is checked once, with
 * FILE:LINE:COL and the key's path in every error.
 *
 *   sandbox:
 *     workspace: .                 # relative to the policy file's directory; --workspace wins
 *     rootfs: /                    # a root filesystem directory, read-only
 *     masked_paths: [~/.secrets]   # added to the default list (fs.h); "~/" is the caller's home
 *     protected_paths: [.git/hooks, ...]  # relative to the workspace; replaces the default list
 *     binds: [{src: /opt/tool, dst: /opt/tool, rw: false}]
 *     env: {KEY: value}            # set in the sandbox
 *     env_pass: [NAME]             # passed from the caller's environment when set
 *     limits: {memory: 4G, pids: 1024, cpu: 2}
 *     tmpfs: {home: 512M, tmp: 1G}
 *     timeout: 0                   # seconds; 0 = none; --timeout wins
 *     hostname: paddock
 *
 * Ownership: pd_run_policy_load fills *out with strings it allocates; pd_run_policy_free releases
 * them. No global state.
 */
#ifndef PD_SANDBOX_RUN_POLICY_H
#define PD_SANDBOX_RUN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "core/schema.h"
#include "sandbox/cgroup.h"
#include "sandbox/fs.h"

/* The field spec of the `sandbox` member (for pd_schema_validate_member and generated docs). */
extern const struct pd_schema_field pd_run_policy_field;

struct pd_run_env {
    char *name;
    char *value;
};

struct pd_run_policy {
    char *workspace; /* as written, resolved against the policy's directory; NULL: not set */
    char *rootfs; /* "/" by default */
    char **masked; /* the user's additions, "~/" expanded */
    size_t nmasked;
    char **protected_paths; /* the defaults unless the policy gave its own list */
    size_t nprotected;
    struct pd_fs_bind *binds; /* src/dst strings owned here */
    size_t nbinds;
    struct pd_run_env *env;
    size_t nenv;
    char **env_pass;
    size_t nenv_pass;
    struct pd_limits limits;
    uint64_t home_size, tmp_size;
    unsigned timeout_s;
    char *hostname;
};

/* Validate doc's `sandbox` member (filling defaults; an absent section means all defaults) and
 * compile it. home is the caller's home directory ("~/" in masked_paths). 0, or -1 with err
 * ("FILE:LINE:COL: sandbox.limits.memory: ..."). */
int pd_run_policy_load(struct pd_config_doc *doc, const char *home, struct pd_run_policy *out,
                       struct pd_err *err);
void pd_run_policy_free(struct pd_run_policy *p);

/* The name of the credential of policy root `root` whose value comes from environment variable
 * `name` (credentials[].value_env), or NULL: the load refuses such a variable in sandbox.env_pass
 * (it would pass the secret in). */
const char *pd_run_policy_credential_of_env(const json_t *root, const char *name);

#endif
