/* run_policy.c - see run_policy.h. */
#include "sandbox/run_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- schema ---- */

/* A size: an integer (bytes) or a string "512M", "2G", "1.5G" (binary multiples). */
static int size_value(const json_t *v, uint64_t *out, struct pd_err *err)
{
    if (json_is_integer(v)) {
        json_int_t n = json_integer_value(v);
        if (n < 0) {
            pd_err_set(err, "expected a size (bytes, or a string such as \"512M\"), got %lld",
                       (long long)n);
            return -1;
        }
        *out = (uint64_t)n;
        return 0;
    }
    if (json_is_string(v))
        return pd_limits_parse_bytes(json_string_value(v), out, err);
    pd_err_set(err, "expected a size (bytes, or a string such as \"512M\")");
    return -1;
}

static int check_size(const json_t *v, struct pd_err *err)
{
    uint64_t n;
    return size_value(v, &n, err);
}

static int check_tmpfs_size(const json_t *v, struct pd_err *err)
{
    uint64_t n;
    if (size_value(v, &n, err) != 0)
        return -1;
    if (n < 1024 * 1024) {
        pd_err_set(err, "expected a size of at least 1M (a tmpfs smaller than that is useless)");
        return -1;
    }
    return 0;
}

static int cpu_value(const json_t *v, uint32_t *out, struct pd_err *err)
{
    char buf[64];
    if (json_is_integer(v) || json_is_real(v)) {
        double d = json_number_value(v);
        snprintf(buf, sizeof buf, "%.3f", d);
        return pd_limits_parse_cpu(buf, out, err);
    }
    if (json_is_string(v))
        return pd_limits_parse_cpu(json_string_value(v), out, err);
    pd_err_set(err, "expected CPUs as a number (1.5) or millicpus as a string (\"1500m\")");
    return -1;
}

static int check_cpu(const json_t *v, struct pd_err *err)
{
    uint32_t n;
    return cpu_value(v, &n, err);
}

static int check_abs_or_home(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    if (s[0] == '/' || (s[0] == '~' && s[1] == '/' && s[2]))
        return 0;
    pd_err_set(err, "expected an absolute path or one starting with ~/");
    return -1;
}

static int check_relative(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    if (s[0] == '/') {
        pd_err_set(err, "expected a path relative to the workspace (such as .git/hooks)");
        return -1;
    }
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') {
            pd_err_set(err, "'..' leaves the workspace: expected a path inside it");
            return -1;
        }
        p += n;
        while (*p == '/')
            p++;
    }
    return 0;
}

static int check_absolute(const json_t *v, struct pd_err *err)
{
    if (json_string_value(v)[0] == '/')
        return 0;
    pd_err_set(err, "expected an absolute path");
    return -1;
}

static int check_env_name(const char *k, struct pd_err *err)
{
    if (!*k || (k[0] >= '0' && k[0] <= '9'))
        goto bad;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            goto bad;
    return 0;
bad:;
    char q[256];
    pd_cfg_quote(k, strlen(k), 40, q, sizeof q);
    pd_err_set(err, "\"%s\" is not an environment variable name (letters, digits, _)", q);
    return -1;
}

static int check_env_name_value(const json_t *v, struct pd_err *err)
{
    return check_env_name(json_string_value(v), err);
}

static int check_hostname(const json_t *v, struct pd_err *err)
{
    const char *s = json_string_value(v);
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.')) {
            pd_err_set(err, "expected a host name (letters, digits, '-', '.')");
            return -1;
        }
    return 0;
}

static const struct pd_schema_field masked_item = {
    .type = PD_SCHEMA_STRING, .min = 2, .max = 4096, .check = check_abs_or_home};
static const struct pd_schema_field protected_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 4096, .check = check_relative};
static const struct pd_schema_field env_value = {.type = PD_SCHEMA_STRING, .max = 65536};
static const struct pd_schema_field env_pass_item = {
    .type = PD_SCHEMA_STRING, .min = 1, .max = 256, .check = check_env_name_value};

static const struct pd_schema_field bind_fields[] = {
    {.key = "src",
     .type = PD_SCHEMA_STRING,
     .required = true,
     .min = 1,
     .max = 4096,
     .check = check_absolute,
     .doc = "host path"},
    {.key = "dst",
     .type = PD_SCHEMA_STRING,
     .required = true,
     .min = 1,
     .max = 4096,
     .check = check_absolute,
     .doc = "path inside (must exist in the root filesystem)"},
    {.key = "rw", .type = PD_SCHEMA_BOOLEAN, .default_json = "false", .doc = "writable"},
    {0}};
static const struct pd_schema bind_schema = {.fields = bind_fields};
static const struct pd_schema_field bind_item = {.type = PD_SCHEMA_OBJECT, .child = &bind_schema};

static const struct pd_schema_field limits_fields[] = {
    {.key = "memory",
     .type = PD_SCHEMA_ANY,
     .check = check_size,
     .default_json = "\"4G\"",
     .doc = "memory limit (0: none)"},
    {.key = "pids",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = PD_LIMITS_PIDS_MAX,
     .default_json = "1024",
     .doc = "process/thread limit (0: none)"},
    {.key = "cpu",
     .type = PD_SCHEMA_ANY,
     .check = check_cpu,
     .default_json = "0",
     .doc = "CPUs (1.5) or millicpus (\"1500m\"); 0: unlimited"},
    {0}};
static const struct pd_schema limits_schema = {.fields = limits_fields};

static const struct pd_schema_field tmpfs_fields[] = {{.key = "home",
                                                       .type = PD_SCHEMA_ANY,
                                                       .check = check_tmpfs_size,
                                                       .default_json = "\"512M\"",
                                                       .doc = "size of the fresh HOME"},
                                                      {.key = "tmp",
                                                       .type = PD_SCHEMA_ANY,
                                                       .check = check_tmpfs_size,
                                                       .default_json = "\"1G\"",
                                                       .doc = "size of /tmp (and /dev/shm)"},
                                                      {0}};
static const struct pd_schema tmpfs_schema = {.fields = tmpfs_fields};

static const struct pd_schema_field sandbox_fields[] = {
    {.key = "workspace",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 4096,
     .doc = "directory mounted read-write at /workspace"},
    {.key = "rootfs",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 4096,
     .check = check_absolute,
     .default_json = "\"/\"",
     .doc = "root filesystem (read-only)"},
    {.key = "masked_paths",
     .type = PD_SCHEMA_ARRAY,
     .items = &masked_item,
     .max = 1024,
     .default_json = "[]",
     .doc = "hidden paths, added to the defaults"},
    {.key = "protected_paths",
     .type = PD_SCHEMA_ARRAY,
     .items = &protected_item,
     .max = 1024,
     .default_json =
         "[\".git/hooks\", \".git/config\", \".gitmodules\", \".bashrc\", "
         "\".bash_profile\", \".bash_login\", \".profile\", \".zshrc\", \".zshenv\", "
         "\".zprofile\", \".envrc\", \".vscode/settings.json\", \".vscode/tasks.json\"]",
     .doc = "read-only paths inside the workspace"},
    {.key = "binds",
     .type = PD_SCHEMA_ARRAY,
     .items = &bind_item,
     .max = 256,
     .default_json = "[]",
     .doc = "extra binds"},
    {.key = "env",
     .type = PD_SCHEMA_MAP,
     .items = &env_value,
     .key_check = check_env_name,
     .max = 1024,
     .default_json = "{}",
     .doc = "environment set inside"},
    {.key = "env_pass",
     .type = PD_SCHEMA_ARRAY,
     .items = &env_pass_item,
     .max = 1024,
     .default_json = "[]",
     .doc = "caller variables passed in"},
    {.key = "limits",
     .type = PD_SCHEMA_OBJECT,
     .child = &limits_schema,
     .default_json = "{}",
     .doc = "resource limits"},
    {.key = "tmpfs",
     .type = PD_SCHEMA_OBJECT,
     .child = &tmpfs_schema,
     .default_json = "{}",
     .doc = "tmpfs sizes"},
    {.key = "timeout",
     .type = PD_SCHEMA_INTEGER,
     .min = 0,
     .max = 31536000,
     .default_json = "0",
     .doc = "seconds before the sandbox is stopped (0: none)"},
    {.key = "hostname",
     .type = PD_SCHEMA_STRING,
     .min = 1,
     .max = 64,
     .check = check_hostname,
     .default_json = "\"paddock\"",
     .doc = "host name inside"},
    {0}};
static const struct pd_schema sandbox_schema = {.fields = sandbox_fields};

const struct pd_schema_field pd_run_policy_field = {.type = PD_SCHEMA_OBJECT,
                                                    .child = &sandbox_schema,
                                                    .default_json = "{}",
                                                    .doc = "the sandbox of paddock run"};

/* ---- compile ---- */

void pd_run_policy_free(struct pd_run_policy *p)
{
    if (!p)
        return;
    free(p->workspace);
    free(p->rootfs);
    for (size_t i = 0; i < p->nmasked; i++)
        free(p->masked[i]);
    free(p->masked);
    for (size_t i = 0; i < p->nprotected; i++)
        free(p->protected_paths[i]);
    free(p->protected_paths);
    for (size_t i = 0; i < p->nbinds; i++) {
        free((char *)p->binds[i].src);
        free((char *)p->binds[i].dst);
    }
    free(p->binds);
    for (size_t i = 0; i < p->nenv; i++) {
        free(p->env[i].name);
        free(p->env[i].value);
    }
    free(p->env);
    for (size_t i = 0; i < p->nenv_pass; i++)
        free(p->env_pass[i]);
    free(p->env_pass);
    free(p->hostname);
    memset(p, 0, sizeof *p);
}

static char *dup_or(bool *ok, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *ok = false;
    return d;
}

static char *join(bool *ok, const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *d = malloc(na + nb + 2);
    if (!d) {
        *ok = false;
        return NULL;
    }
    memcpy(d, a, na);
    size_t k = na;
    if (k == 0 || d[k - 1] != '/')
        d[k++] = '/';
    memcpy(d + k, b, nb + 1);
    return d;
}

static char **strings(bool *ok, const json_t *arr, size_t *n, const char *home)
{
    *n = 0;
    size_t cnt = json_array_size(arr);
    if (cnt == 0)
        return NULL;
    char **out = calloc(cnt, sizeof *out);
    if (!out) {
        *ok = false;
        return NULL;
    }
    for (size_t i = 0; i < cnt; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        out[i] = home && s[0] == '~' ? join(ok, home, s + 2) : dup_or(ok, s);
    }
    *n = cnt;
    return out;
}

const char *pd_run_policy_credential_of_env(const json_t *root, const char *name)
{
    const json_t *creds = json_object_get(root, "credentials");
    for (size_t i = 0; i < json_array_size(creds); i++) {
        const json_t *c = json_array_get(creds, i);
        const char *var = json_string_value(json_object_get(c, "value_env"));
        if (var && !strcmp(var, name))
            return pd_config_get_string(c, "name", "?");
    }
    return NULL;
}

/* The agent must never see a secret: a credential's source variable may not be passed in (a
 * placeholder of the same name in sandbox.env is fine; `paddock run` refuses any variable whose
 * value holds a credential's value). */
static int check_no_secret_env(struct pd_config_doc *doc, const json_t *root, const json_t *sb,
                               struct pd_err *err)
{
    char where[512];
    const json_t *pass = json_object_get(sb, "env_pass");
    for (size_t i = 0; i < json_array_size(pass); i++) {
        const char *name = json_string_value(json_array_get(pass, i));
        const char *cred = name ? pd_run_policy_credential_of_env(root, name) : NULL;
        if (cred) {
            pd_err_set(err,
                       "%s: sandbox.env_pass[%zu]: '%s' holds the value of credential '%s'; "
                       "passing it in would show the agent the secret (the gateway injects it: "
                       "send requests to the credential's domain or alias instead)",
                       pd_config_where_index(doc, pass, i, where, sizeof where), i, name, cred);
            return -1;
        }
    }
    return 0;
}

int pd_run_policy_load(struct pd_config_doc *doc, const char *home, struct pd_run_policy *out,
                       struct pd_err *err)
{
    memset(out, 0, sizeof *out);
    json_t *root = pd_config_root(doc);
    if (pd_schema_validate_member(doc, root, "sandbox", &pd_run_policy_field, true, err) != 0)
        return -1;
    const json_t *sb = json_object_get(root, "sandbox");
    if (check_no_secret_env(doc, root, sb, err) != 0)
        return -1;
    bool ok = true;
    const char *ws = pd_config_get_string(sb, "workspace", NULL);
    if (ws) {
        if (ws[0] == '/') {
            out->workspace = dup_or(&ok, ws);
        } else {
            /* relative to the policy file's directory */
            const char *name = pd_config_name(doc);
            const char *slash = strrchr(name, '/');
            char dir[4096];
            if (slash)
                snprintf(dir, sizeof dir, "%.*s", (int)(slash - name), name);
            else
                snprintf(dir, sizeof dir, ".");
            out->workspace = join(&ok, dir[0] ? dir : "/", ws);
        }
    }
    out->rootfs = dup_or(&ok, pd_config_get_string(sb, "rootfs", "/"));
    out->masked = strings(&ok, json_object_get(sb, "masked_paths"), &out->nmasked, home);
    out->protected_paths =
        strings(&ok, json_object_get(sb, "protected_paths"), &out->nprotected, NULL);
    out->env_pass = strings(&ok, json_object_get(sb, "env_pass"), &out->nenv_pass, NULL);
    const json_t *binds = json_object_get(sb, "binds");
    if (json_array_size(binds) > 0 &&
        !(out->binds = calloc(json_array_size(binds), sizeof *out->binds)))
        ok = false;
    for (size_t i = 0; ok && i < json_array_size(binds); i++) {
        const json_t *b = json_array_get(binds, i);
        out->binds[i].src = dup_or(&ok, pd_config_get_string(b, "src", ""));
        out->binds[i].dst = dup_or(&ok, pd_config_get_string(b, "dst", ""));
        out->binds[i].rw = pd_config_get_bool(b, "rw", false);
        out->nbinds = i + 1;
    }
    const json_t *env = json_object_get(sb, "env");
    if (json_object_size(env) > 0 && !(out->env = calloc(json_object_size(env), sizeof *out->env)))
        ok = false;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)env, key, val)
    {
        if (!ok)
            break;
        out->env[out->nenv].name = dup_or(&ok, key);
        out->env[out->nenv].value = dup_or(&ok, json_string_value(val));
        out->nenv++;
    }
    const json_t *lim = json_object_get(sb, "limits");
    if (size_value(json_object_get(lim, "memory"), &out->limits.memory_bytes, err) != 0 ||
        cpu_value(json_object_get(lim, "cpu"), &out->limits.cpu_millis, err) != 0) {
        pd_run_policy_free(out);
        return -1; /* unreachable: the schema checked both */
    }
    out->limits.pids = (uint64_t)pd_config_get_int(lim, "pids", 0);
    const json_t *tmpfs = json_object_get(sb, "tmpfs");
    if (size_value(json_object_get(tmpfs, "home"), &out->home_size, err) != 0 ||
        size_value(json_object_get(tmpfs, "tmp"), &out->tmp_size, err) != 0) {
        pd_run_policy_free(out);
        return -1;
    }
    out->timeout_s = (unsigned)pd_config_get_int(sb, "timeout", 0);
    out->hostname = dup_or(&ok, pd_config_get_string(sb, "hostname", "paddock"));
    if (!ok) {
        pd_run_policy_free(out);
        pd_err_set(err, "%s: out of memory reading the sandbox section", pd_config_name(doc));
        return -1;
    }
    return 0;
}
