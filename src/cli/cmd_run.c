/*
 * cmd_run.c - `paddock run [options] -- CMD [ARGS...]`: one sandbox and its own gateway from a
 * local policy file (src/sandbox/sandbox.h, src/sandbox/run_policy.h); run_loop.c supervises it.
 *
 * Exit status: the command's; 128+N when signal N ended it; 124 after --timeout; 125 when paddock
 * could not set up the sandbox (bad policy, a missing layer); 126/127 when the command cannot be
 * executed / is not found inside; 2 on usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/learn.h"
#include "cli/run.h"
#include "core/config.h"
#include "gateway/policy.h"
#include "sandbox/run_policy.h"

#define MAX_ENV 1024
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PROXY_URL "http://127.0.0.1:3128"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: paddock run [--policy FILE] [--workspace DIR] [--name ID] [--timeout S]\n"
        "                   [--env K=V]... [--allow-degraded LAYER]... [--log FILE]\n"
        "                   [--learn OUT.yaml]\n"
        "                   [--] CMD [ARGS...]\n"
        "\n"
        "Run CMD in a sandbox whose only way out is its own egress gateway, which enforces\n"
        "the policy in FILE (without --policy nothing is allowed). Inside: the host's root\n"
        "read-only, the workspace read-write at /workspace (the working directory), a fresh\n"
        "HOME and /tmp, credential files masked, no capabilities, a syscall filter, resource\n"
        "limits, and a network with only the proxy (127.0.0.1:3128, set in HTTP_PROXY and\n"
        "HTTPS_PROXY) and the DNS filter (127.0.0.1:53). 'paddock doctor' shows what this\n"
        "host supports.\n"
        "\n"
        "  --policy FILE       gateway policy plus a `sandbox` section (YAML or JSON)\n"
        "  --workspace DIR     the directory mounted at /workspace (default: the policy's\n"
        "                      sandbox.workspace, else the current directory)\n"
        "  --name ID           sandbox id for logs and the cgroup (default: the policy's\n"
        "                      sandbox_id, else run-<pid>)\n"
        "  --timeout S         stop the whole sandbox after S seconds (exit status 124)\n"
        "  --env K=V           set a variable inside (repeatable; the host's environment is\n"
        "                      not passed in, except PATH, TERM, COLORTERM, LANG, TZ and\n"
        "                      the policy's sandbox.env_pass)\n"
        "  --allow-degraded LAYER  run even though LAYER is missing on this host\n"
        "                      (%s; repeatable or comma-separated)\n"
        "  --log FILE          the gateway's access log (default:\n"
        "                      $XDG_STATE_HOME/paddock/ID.log or ~/.local/state/paddock/ID.log)\n"
        "  --learn OUT.yaml    after the run, write a proposed policy to OUT.yaml: the policy\n"
        "                      with every denied destination as a commented-out candidate rule\n"
        "                      (nothing is allowed until you uncomment it)\n"
        "\n"
        "Exit status: the command's; 128+N if signal N ended it; 124 after --timeout; 125\n"
        "if the sandbox could not be set up; 126/127 if CMD cannot be run / is not found.\n",
        pd_sandbox_layer_names());
}

struct env_list {
    char *items[MAX_ENV]; /* "K=V", malloc'ed */
    size_t n;
};

static void env_free(struct env_list *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->items[i]);
    e->n = 0;
}

/* Set K=V, replacing an earlier K. -1 when full or out of memory. */
static int env_set(struct env_list *e, const char *k, size_t klen, const char *v)
{
    size_t vlen = strlen(v);
    char *s = malloc(klen + vlen + 2);
    if (!s)
        return -1;
    memcpy(s, k, klen);
    s[klen] = '=';
    memcpy(s + klen + 1, v, vlen + 1);
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->items[i], k, klen) == 0 && e->items[i][klen] == '=') {
            free(e->items[i]);
            e->items[i] = s;
            return 0;
        }
    if (e->n + 1 >= MAX_ENV) {
        free(s);
        return -1;
    }
    e->items[e->n++] = s;
    e->items[e->n] = NULL;
    return 0;
}

static int env_setz(struct env_list *e, const char *k, const char *v)
{
    return env_set(e, k, strlen(k), v);
}

/* A sandbox id that is also safe as a file name (the default log is ID.log): no leading '.'. */
static bool valid_name(const char *s)
{
    return pd_gw_sandbox_id_valid(s) && s[0] != '.';
}

static int mkdirs(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, mode);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, mode) == 0 || errno == EEXIST ? 0 : -1;
}

/* The gateway's log: --log FILE, else the state directory. */
static int open_log(const char *opt, const char *home, const char *name, char *path, size_t cap)
{
    if (opt) {
        snprintf(path, cap, "%s", opt);
    } else {
        const char *st = getenv("XDG_STATE_HOME");
        char dir[PATH_MAX];
        if (st && st[0] == '/')
            snprintf(dir, sizeof dir, "%s/paddock", st);
        else
            snprintf(dir, sizeof dir, "%s/.local/state/paddock", home);
        if (mkdirs(dir, 0700) != 0) {
            fprintf(stderr,
                    "paddock run: cannot create the log directory %s: %s (use --log FILE)\n", dir,
                    strerror(errno));
            return -1;
        }
        int n = snprintf(path, cap, "%s/%s.log", dir, name);
        if (n < 0 || (size_t)n >= cap) {
            fprintf(stderr, "paddock run: the log path under %s is too long (use --log FILE)\n",
                    dir);
            return -1;
        }
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0)
        fprintf(stderr, "paddock run: cannot open the log %s: %s\n", path, strerror(errno));
    return fd;
}

struct run_args {
    const char *policy, *workspace, *name, *log, *learn;
    long timeout; /* -1: not given */
    unsigned degraded;
    const char *envs[MAX_ENV];
    size_t nenv;
    char **cmd;
};

static int parse_args(int argc, char **argv, struct run_args *a, int *status)
{
    a->timeout = -1;
    int i = 1;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0) {
            i++;
            break;
        }
        if (s[0] != '-')
            break;
        if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
            usage(stdout);
            *status = 0;
            return -1;
        }
        static const char *const names[] = {"--policy", "--workspace",      "--name", "--timeout",
                                            "--env",    "--allow-degraded", "--log",  "--learn"};
        size_t k = 0;
        const char *v = NULL;
        for (; k < sizeof names / sizeof names[0]; k++) {
            size_t n = strlen(names[k]);
            if (strncmp(s, names[k], n) == 0 && (s[n] == '\0' || s[n] == '=')) {
                if (s[n] == '=')
                    v = s + n + 1;
                else if (i + 1 < argc)
                    v = argv[++i];
                break;
            }
        }
        if (k == sizeof names / sizeof names[0]) {
            *status =
                pd_cli_usage_error("run", "unknown option '%s' (see 'paddock run --help')", s);
            return -1;
        }
        if (!v) {
            *status = pd_cli_usage_error("run", "option '%s' needs a value", names[k]);
            return -1;
        }
        switch (k) {
        case 0:
            a->policy = v;
            break;
        case 1:
            a->workspace = v;
            break;
        case 2:
            if (!valid_name(v)) {
                *status = pd_cli_usage_error(
                    "run", "--name '%s': expected 1 to 64 of [A-Za-z0-9._-], not starting with '.'",
                    v);
                return -1;
            }
            a->name = v;
            break;
        case 3: {
            char *end = NULL;
            errno = 0;
            long t = strtol(v, &end, 10);
            if (!*v || *end || errno || t < 1 || t > 31536000) {
                *status = pd_cli_usage_error(
                    "run", "--timeout '%s': expected whole seconds from 1 to 31536000", v);
                return -1;
            }
            a->timeout = t;
            break;
        }
        case 4: {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                *status = pd_cli_usage_error("run", "--env '%s': expected NAME=VALUE", v);
                return -1;
            }
            if (a->nenv >= MAX_ENV / 2) {
                *status = pd_cli_usage_error("run", "too many --env (at most %d)", MAX_ENV / 2);
                return -1;
            }
            a->envs[a->nenv++] = v;
            break;
        }
        case 5: {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                unsigned bit = pd_sandbox_layer_bit(t);
                if (!bit) {
                    *status = pd_cli_usage_error(
                        "run", "--allow-degraded: unknown layer '%s' (one of: %s)", t,
                        pd_sandbox_layer_names());
                    return -1;
                }
                a->degraded |= bit;
            }
            break;
        }
        case 6:
            a->log = v;
            break;
        default: {
            size_t n = strlen(v);
            if (n < 6 || (strcmp(v + n - 5, ".yaml") != 0 && strcmp(v + n - 4, ".yml") != 0)) {
                *status = pd_cli_usage_error(
                    "run",
                    "--learn '%s': expected a .yaml or .yml file (the proposal is YAML: "
                    "its candidate rules are comments)",
                    v);
                return -1;
            }
            a->learn = v;
            break;
        }
        }
    }
    if (i >= argc) {
        *status =
            pd_cli_usage_error("run", "no command given: paddock run [options] -- CMD [ARGS...]");
        return -1;
    }
    a->cmd = argv + i;
    return 0;
}

static int build_env(struct env_list *e, const struct run_args *a, const struct pd_run_policy *rp,
                     const char *home, const char *user)
{
    const char *path = getenv("PATH");
    if (env_setz(e, "PATH", path && *path ? path : DEFAULT_PATH) != 0)
        return -1;
    static const char *const pass[] = {"TERM", "COLORTERM", "LANG", "TZ"};
    for (size_t i = 0; i < sizeof pass / sizeof pass[0]; i++) {
        const char *v = getenv(pass[i]);
        if (v && env_setz(e, pass[i], v) != 0)
            return -1;
    }
    if (env_setz(e, "HOME", home) != 0 || env_setz(e, "USER", user) != 0 ||
        env_setz(e, "HTTP_PROXY", PROXY_URL) != 0 || env_setz(e, "HTTPS_PROXY", PROXY_URL) != 0 ||
        env_setz(e, "http_proxy", PROXY_URL) != 0 || env_setz(e, "https_proxy", PROXY_URL) != 0 ||
        env_setz(e, "NO_PROXY", "localhost,127.0.0.1,::1") != 0)
        return -1;
    for (size_t i = 0; i < rp->nenv_pass; i++) {
        const char *v = getenv(rp->env_pass[i]);
        if (v && env_setz(e, rp->env_pass[i], v) != 0)
            return -1;
    }
    for (size_t i = 0; i < rp->nenv; i++)
        if (env_setz(e, rp->env[i].name, rp->env[i].value) != 0)
            return -1;
    for (size_t i = 0; i < a->nenv; i++) {
        const char *eq = strchr(a->envs[i], '=');
        if (env_set(e, a->envs[i], (size_t)(eq - a->envs[i]), eq + 1) != 0)
            return -1;
    }
    return 0;
}

/* Protected paths that do not exist cannot be protected (nothing to mount over without writing to
 * the user's workspace): remember which were missing, and say after the run if the command made
 * one, so the user reviews it before git or a shell runs it on the host. */
static bool *missing_protected(const char *ws, const struct pd_run_policy *rp)
{
    bool *miss = calloc(rp->nprotected + 1, sizeof *miss);
    for (size_t i = 0; miss && i < rp->nprotected; i++) {
        char path[PATH_MAX];
        struct stat st;
        int n = snprintf(path, sizeof path, "%s/%s", ws, rp->protected_paths[i]);
        miss[i] = n > 0 && (size_t)n < sizeof path && lstat(path, &st) != 0 && errno == ENOENT;
    }
    return miss;
}

static void report_created_protected(const char *ws, const struct pd_run_policy *rp,
                                     const bool *miss)
{
    for (size_t i = 0; miss && i < rp->nprotected; i++) {
        char path[PATH_MAX];
        struct stat st;
        int n = snprintf(path, sizeof path, "%s/%s", ws, rp->protected_paths[i]);
        if (miss[i] && n > 0 && (size_t)n < sizeof path && lstat(path, &st) == 0)
            fprintf(stderr,
                    "paddock run: warning: the command created %s, a protected path that did not "
                    "exist when it started: review it before running git or a shell there\n",
                    path);
    }
}

/* The files the gateway reads or writes, as absolute paths (a state file not made yet: its
 * directory resolved, plus the name), with what the sandbox must do about each. */
#define MAX_GW_FILES 128
struct gw_files {
    char *path[MAX_GW_FILES];
    bool hide[MAX_GW_FILES]; /* secrets and state: hidden; the rest: read-only in the workspace */
    size_t n;
};

static char *absolute(const char *path)
{
    char *r = realpath(path, NULL);
    if (r || errno != ENOENT)
        return r;
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    char *d = realpath(dir[0] ? dir : "/", NULL);
    if (!d)
        return NULL;
    size_t n = strlen(d) + strlen(slash ? slash + 1 : path) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", strcmp(d, "/") ? d : "", slash ? slash + 1 : path);
    free(d);
    return out;
}

static int collect_gw_files(const struct pd_gw_policy *gp, struct gw_files *f)
{
    struct pd_gw_file files[MAX_GW_FILES];
    size_t n = pd_gw_policy_files(gp, files, MAX_GW_FILES);
    if (n > MAX_GW_FILES) {
        fprintf(stderr, "paddock run: the policy names more than %d files\n", MAX_GW_FILES);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (files[i].kind == PD_GW_FILE_POLICY && files[i].path[0] == '(')
            continue; /* the built-in policy */
        char *abs = absolute(files[i].path);
        if (!abs) {
            if (files[i].kind == PD_GW_FILE_SECRET) {
                fprintf(stderr, "paddock run: %s: %s\n", files[i].path, strerror(errno));
                return -1;
            }
            continue;
        }
        f->hide[f->n] = files[i].kind == PD_GW_FILE_SECRET || files[i].kind == PD_GW_FILE_STATE;
        f->path[f->n++] = abs;
    }
    return 0;
}

/* Other users' home directories (their files, and the Unix sockets their programs leave there):
 * every entry of /home but the one holding the caller's home. */
static int other_homes(const char *home, struct gw_files *out)
{
    DIR *d = opendir("/home");
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        size_t n = strlen(e->d_name);
        if (!strncmp(home, "/home/", 6) && !strncmp(home + 6, e->d_name, n) &&
            (home[6 + n] == '/' || home[6 + n] == '\0'))
            continue;
        if (out->n >= MAX_GW_FILES) {
            closedir(d);
            fprintf(stderr, "paddock run: more than %d entries in /home\n", MAX_GW_FILES);
            return -1;
        }
        size_t len = n + 7;
        char *p = malloc(len);
        if (!p) {
            closedir(d);
            return -1;
        }
        snprintf(p, len, "/home/%s", e->d_name);
        out->hide[out->n] = true;
        out->path[out->n++] = p;
    }
    closedir(d);
    return 0;
}

static void gw_files_free(struct gw_files *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->path[i]);
    f->n = 0;
}

/* --learn OUT must not overwrite the policy or the log it is made from. */
static bool same_file(const struct stat *a, const char *path)
{
    struct stat b;
    return path && stat(path, &b) == 0 && a->st_dev == b.st_dev && a->st_ino == b.st_ino;
}

static bool learn_target_ok(const char *out, const char *policy, const char *log)
{
    struct stat so;
    if (stat(out, &so) != 0)
        return true;
    const char *what = same_file(&so, policy) ? "policy itself"
                       : same_file(&so, log)  ? "access log"
                                              : NULL;
    if (what)
        fprintf(stderr,
                "paddock run: --learn %s: that is the %s; name a new file for the proposal\n", out,
                what);
    return what == NULL;
}

/* After the run: one line saying what the gateway denied, if anything (an agent often hides the
 * proxy's answer behind its own error message). */
static void report_denials(const char *log_path, off_t from, const char *name)
{
    FILE *f = fopen(log_path, "re");
    if (!f)
        return;
    char what[600];
    size_t n = 0;
    if (fseeko(f, from, SEEK_SET) == 0 && pd_learn_summarize(f, name, what, sizeof what, &n) == 0 &&
        n > 0)
        fprintf(stderr,
                "paddock run: the gateway denied %zu request%s or quer%s: %s (details: %s; "
                "--learn FILE.yaml proposes rules)\n",
                n, n == 1 ? "" : "s", n == 1 ? "y" : "ies", what, log_path);
    fclose(f);
}

/* After the run (the gateway has stopped and flushed its log): write the proposal. */
static void learn(const struct run_args *a, const char *log_path, off_t from, const char *name)
{
    char cmd[160] = "";
    size_t n = 0;
    for (char **p = a->cmd; *p && n < sizeof cmd; p++)
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, "%s%s", p == a->cmd ? "" : " ", *p);
    struct pd_learn_opts o = {.log_path = log_path,
                              .log_from = from,
                              .sandbox_id = name,
                              .policy_path = a->policy,
                              .out_path = a->learn,
                              .command = cmd};
    struct pd_learn_summary sum;
    struct pd_err err = {{0}};
    if (pd_learn_propose(&o, &sum, &err) != 0) {
        fprintf(stderr, "paddock run: %s\n", err.msg);
        return;
    }
    fprintf(stderr,
            "paddock run: --learn: %zu denial%s: %zu candidate rule%s and %zu note%s in %s "
            "(nothing is allowed until you uncomment a rule; then: paddock policy check %s)\n",
            sum.denials, sum.denials == 1 ? "" : "s", sum.candidates,
            sum.candidates == 1 ? "" : "s", sum.notes, sum.notes == 1 ? "" : "s", a->learn,
            a->learn);
    if (sum.relative_path_moved)
        fprintf(stderr,
                "paddock run: --learn: the policy names files relative to its directory "
                "and %s is elsewhere: move it next to the policy before using it\n",
                a->learn);
}

int pd_cmd_run(int argc, char **argv)
{
    struct run_args a;
    memset(&a, 0, sizeof a);
    int status = 2;
    if (parse_args(argc, argv, &a, &status) != 0)
        return status;
    for (size_t i = 0; i < a.nenv; i++) {
        const char *eq = strchr(a.envs[i], '=');
        for (const char *p = a.envs[i]; p < eq; p++)
            if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9' && p > a.envs[i]) || *p == '_'))
                return pd_cli_usage_error("run", "--env '%s': '%.*s' is not a variable name",
                                          a.envs[i], (int)(eq - a.envs[i]), a.envs[i]);
    }

    /* Who the caller is: HOME (masked paths, the fresh HOME) and USER. */
    /* From the environment when it says (the user's choice, and no NSS lookup on the start path),
     * else the password database. */
    const char *home = getenv("HOME"), *user = getenv("USER");
    struct passwd *pw = NULL;
    if (!home || home[0] != '/' || !user || !*user)
        pw = getpwuid(getuid());
    if (!home || home[0] != '/')
        home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/";
    if (!user || !*user)
        user = pw && pw->pw_name ? pw->pw_name : NULL;
    /* HOME inside: a fresh tmpfs at the same path, which must exist in the root (or be beneath the
     * sandbox's own /tmp); a home that does not exist (nobody's /nonexistent) becomes /tmp/home. */
    struct stat sth;
    const char *inside_home = home;
    if (strncmp(home, "/tmp/", 5) != 0 && strncmp(home, "/var/tmp/", 9) != 0 &&
        (stat(home, &sth) != 0 || !S_ISDIR(sth.st_mode)))
        inside_home = "/tmp/home";
    else if (strcmp(home, "/") == 0 || strcmp(home, "/tmp") == 0)
        inside_home = "/tmp/home";
    char uidbuf[16];
    if (!user) {
        snprintf(uidbuf, sizeof uidbuf, "%u", (unsigned)getuid());
        user = uidbuf;
    }

    /* The policy: validated whole (gateway part, then the sandbox section) before anything runs. */
    struct pd_err err = {{0}};
    struct pd_config_doc *doc = a.policy
                                    ? pd_config_load_file(a.policy, PD_CONFIG_AUTO, &err)
                                    : pd_config_load_buffer("(built-in policy: nothing allowed)",
                                                            "{}", 2, PD_CONFIG_JSON, &err);
    if (!doc) {
        fprintf(stderr, "paddock run: %s\n", err.msg);
        return 125;
    }
    struct pd_gw_policy *gp = pd_gw_policy_compile(doc, NULL, &err);
    if (!gp) {
        fprintf(stderr, "paddock run: %s\n", err.msg);
        pd_config_doc_free(doc);
        return 125;
    }
    /* The gateway's own files stay out of the agent's reach: credential files and the budget
     * state hidden, the policy and the files it reads read-only where they are writable (in the
     * workspace). */
    struct gw_files gwf = {.n = 0};
    int frc = collect_gw_files(gp, &gwf);
    /* The policy's sandbox_id names the sandbox unless --name does. */
    char policy_id[80] = "";
    if (strcmp(pd_gw_policy_sandbox_id(gp), PD_GW_DEFAULT_SANDBOX_ID) != 0)
        snprintf(policy_id, sizeof policy_id, "%s", pd_gw_policy_sandbox_id(gp));
    struct pd_run_policy rp;
    if (frc != 0 || pd_run_policy_load(doc, home, &rp, &err) != 0) {
        if (frc == 0)
            fprintf(stderr, "paddock run: %s\n", err.msg);
        gw_files_free(&gwf);
        pd_gw_policy_unref(gp);
        pd_config_doc_free(doc);
        return 125;
    }
    pd_config_doc_free(doc);

    status = 125;
    struct env_list env = {.n = 0};
    char **masked = NULL;
    size_t ndefault = 0;
    const char **allmasked = NULL, **allprot = NULL;
    size_t nallmasked = 0, nallprot = 0;
    struct gw_files homes = {.n = 0};
    char log_real[PATH_MAX];
    int log_fd = -1, memfd = -1;
    bool *missing = NULL;
    char workspace[PATH_MAX], log_path[PATH_MAX], name[80], policy_arg[PATH_MAX];

    const char *ws = a.workspace ? a.workspace : rp.workspace ? rp.workspace : ".";
    if (!realpath(ws, workspace)) {
        fprintf(stderr, "paddock run: workspace %s: %s\n", ws, strerror(errno));
        goto out;
    }
    struct stat stw;
    if (stat(workspace, &stw) != 0 || !S_ISDIR(stw.st_mode)) {
        fprintf(stderr, "paddock run: workspace %s: not a directory\n", workspace);
        goto out;
    }
    if (a.name)
        snprintf(name, sizeof name, "%s", a.name);
    else if (policy_id[0])
        snprintf(name, sizeof name, "%s", policy_id);
    else
        snprintf(name, sizeof name, "run-%d", (int)getpid());

    int nm = pd_fs_default_masked(home, &masked, &err);
    if (nm < 0) {
        fprintf(stderr, "paddock run: %s\n", err.msg);
        goto out;
    }
    ndefault = (size_t)nm;
    if ((log_fd = open_log(a.log, home, name, log_path, sizeof log_path)) < 0)
        goto out;
    off_t log_from = lseek(log_fd, 0, SEEK_END);
    if (a.learn && !learn_target_ok(a.learn, a.policy, log_path))
        goto out;
    char *log_abs = realpath(log_path, NULL);
    size_t wlen = strlen(workspace);
    if (other_homes(home, &homes) != 0)
        goto out;
    allmasked = calloc(ndefault + rp.nmasked + gwf.n + homes.n + 2, sizeof *allmasked);
    allprot = calloc(rp.nprotected + gwf.n + 1, sizeof *allprot);
    if (!allmasked || !allprot) {
        free(log_abs);
        fprintf(stderr, "paddock run: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < ndefault; i++)
        allmasked[nallmasked++] = masked[i];
    for (size_t i = 0; i < rp.nmasked; i++)
        allmasked[nallmasked++] = rp.masked[i];
    for (size_t i = 0; i < rp.nprotected; i++)
        allprot[nallprot++] = rp.protected_paths[i];
    for (size_t i = 0; i < gwf.n; i++) {
        if (gwf.hide[i])
            allmasked[nallmasked++] = gwf.path[i];
        else if (strncmp(gwf.path[i], workspace, wlen) == 0 && gwf.path[i][wlen] == '/')
            allprot[nallprot++] = gwf.path[i] + wlen + 1;
    }
    for (size_t i = 0; i < homes.n; i++)
        allmasked[nallmasked++] = homes.path[i];
    /* The access log: the agent neither reads nor forges it, wherever it is. */
    if (log_abs) {
        snprintf(log_real, sizeof log_real, "%s", log_abs);
        free(log_abs);
        allmasked[nallmasked++] = log_real;
    }
    if (build_env(&env, &a, &rp, inside_home, user) != 0) {
        fprintf(stderr, "paddock run: too many environment variables or out of memory\n");
        goto out;
    }
    /* The agent never sees a secret: no variable inside may hold a credential's value, whichever
     * way it came in (--env, sandbox.env, a passed variable). */
    for (size_t i = 0; i < env.n; i++) {
        const char *eq = strchr(env.items[i], '=');
        const char *cred = pd_gw_policy_secret_owner(gp, eq + 1, strlen(eq + 1));
        if (cred) {
            fprintf(stderr,
                    "paddock run: the variable %.*s inside the sandbox would hold the value of "
                    "credential '%s'; the agent must never see it (the gateway injects it: give "
                    "the variable a placeholder, or leave it out)\n",
                    (int)(eq - env.items[i]), env.items[i], cred);
            goto out;
        }
    }
    pd_gw_policy_unref(gp);
    gp = NULL;

    if (a.policy) {
        snprintf(policy_arg, sizeof policy_arg, "%s", a.policy);
    } else {
        memfd = memfd_create("paddock-policy", MFD_CLOEXEC);
        if (memfd < 0 || write(memfd, "{}\n", 3) != 3) {
            fprintf(stderr, "paddock run: memfd for the built-in policy: %s\n", strerror(errno));
            goto out;
        }
        snprintf(policy_arg, sizeof policy_arg, "/proc/self/fd/4");
    }

    char hosts[256];
    snprintf(hosts, sizeof hosts,
             "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n",
             rp.hostname);
    struct pd_sandbox_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.argv = a.cmd;
    spec.envp = env.items;
    spec.fs.rootfs = rp.rootfs;
    spec.fs.workspace = workspace;
    spec.fs.home = inside_home;
    spec.fs.home_size = rp.home_size;
    spec.fs.tmp_size = rp.tmp_size;
    spec.fs.masked = allmasked;
    spec.fs.nmasked = nallmasked;
    spec.fs.protected_paths = allprot;
    spec.fs.nprotected = nallprot;
    spec.fs.binds = rp.binds;
    spec.fs.nbinds = rp.nbinds;
    spec.fs.resolv_conf = "nameserver 127.0.0.1\n";
    spec.fs.hosts = hosts;
    spec.limits = rp.limits;
    spec.name = name;
    spec.hostname = rp.hostname;
    spec.degraded = a.degraded;
    spec.pty = isatty(0) == 1;
    if (spec.pty && ioctl(0, TIOCGWINSZ, &spec.winsize) != 0)
        memset(&spec.winsize, 0, sizeof spec.winsize);

    /* Signals wait in the queue until the supervisor loop takes them (none is lost meanwhile). */
    sigset_t set;
    sigemptyset(&set);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    missing = missing_protected(workspace, &rp);
    struct run_ctx ctx = {
        .policy_path = policy_arg,
        .policy_memfd = memfd,
        .log_fd = log_fd,
        .log_path = log_path,
        .name = name,
        .timeout_s = a.timeout > 0 ? (unsigned)a.timeout : rp.timeout_s,
        .pty = spec.pty,
    };
    ctx.gw = (struct run_gateway){.pid = -1, .pidfd = -1, .sock = -1};
    char warnings[2048];
    struct pd_sandbox *sb = NULL;
    int rc = pd_sandbox_start(&spec, &sb, warnings, sizeof warnings, &err);
    for (char *line = warnings; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        fprintf(stderr, "paddock run: warning: %.*s\n", (int)len, line);
        line += len + (nl ? 1 : 0);
    }
    if (rc < 0) {
        fprintf(stderr, "paddock run: %s\n", err.msg);
        pd_run_gateway_stop(&ctx.gw);
        goto out;
    }
    if (rc == 1) {
        /* The command could not be executed: the agent already said why on its stderr. */
        status = pd_sandbox_wait(sb, &err);
        pd_sandbox_free(sb);
        pd_run_gateway_stop(&ctx.gw);
        if (status < 0)
            status = 125;
        goto out;
    }
    ctx.sb = sb;
    status = pd_run_supervise(&ctx);
    report_created_protected(workspace, &rp, missing);
    if (a.learn)
        learn(&a, log_path, log_from < 0 ? 0 : log_from, name);
    else
        report_denials(log_path, log_from < 0 ? 0 : log_from, name);
out:
    pd_gw_policy_unref(gp);
    if (log_fd >= 0)
        close(log_fd);
    if (memfd >= 0)
        close(memfd);
    free(missing);
    free(allmasked);
    free(allprot);
    gw_files_free(&gwf);
    gw_files_free(&homes);
    pd_fs_free_list(masked, ndefault);
    env_free(&env);
    pd_run_policy_free(&rp);
    return status;
}
