/*
 * escape_proc.c - the escape probe's attempts on the process itself: its privileges (caps,
 * setuid-gain), what it was given (env, fds), and its resources and lifetime (fork-bomb, balloon,
 * background). The contract is at the top of escape.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"

/* ---------------------------------------------------------------- privileges */

/* /proc/self/status lines that say what the process may do. */
static void status_members(struct out *o, bool *any_cap, long *euid, long *ruid)
{
    *any_cap = false;
    *euid = *ruid = -1;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) {
        esc_probe_error(o, errno, "open /proc/self/status: %s", strerror(errno));
        return;
    }
    char line[256];
    esc_x_key(o, "status");
    esc_x_str(o, "{");
    bool first = true;
    while (fgets(line, sizeof line, f)) {
        static const char *const keys[] = {"Uid",    "Gid",    "CapInh",     "CapPrm",  "CapEff",
                                           "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Groups"};
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        bool want = false;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            want = want || strcmp(line, keys[i]) == 0;
        if (!want)
            continue;
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t n = strcspn(v, "\n");
        v[n] = '\0';
        if (!first)
            esc_x_str(o, ", ");
        first = false;
        esc_x_json_bytes(o, line, strlen(line));
        esc_x_str(o, ": ");
        esc_x_json_bytes(o, v, n);
        if (strncmp(line, "Cap", 3) == 0 && strtoull(v, NULL, 16) != 0)
            *any_cap = true;
        if (strcmp(line, "Uid") == 0)
            sscanf(v, "%ld %ld", ruid, euid);
    }
    esc_x_str(o, "}");
    fclose(f);
}

void esc_a_caps(struct out *o)
{
    bool any = false;
    long euid = -1, ruid = -1;
    status_members(o, &any, &euid, &ruid);
    if (o->error)
        return;
    if (any) {
        o->escaped = true;
        esc_detail(o, "a capability set is not empty");
    }
    if (euid == 0 && ruid != 0) {
        o->escaped = true;
        esc_detail(o, "gained euid 0 (real uid %ld)", ruid);
    }
    if (!o->escaped) {
        o->err = EPERM;
        esc_detail(o, "every capability set is empty; uid %ld euid %ld", ruid, euid);
    }
}

void esc_a_setuid_gain(struct out *o, int argc, char **argv)
{
    if (argc < 1) {
        esc_probe_error(o, EINVAL, "usage: escape setuid-gain PATH (a setuid copy of id(1))");
        return;
    }
    int out[2], errp[2];
    if (pipe2(out, O_CLOEXEC) != 0) {
        esc_probe_error(o, errno, "pipe: %s", strerror(errno));
        return;
    }
    if (pipe2(errp, O_CLOEXEC) != 0) {
        esc_probe_error(o, errno, "pipe: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        esc_probe_error(o, errno, "fork: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        close(errp[0]);
        close(errp[1]);
        return;
    }
    if (pid == 0) {
        if (dup2(out[1], STDOUT_FILENO) < 0)
            _exit(5);
        char *args[] = {argv[0], (char *)"-u", NULL};
        execv(argv[0], args);
        int e = errno;
        if (write(errp[1], &e, sizeof e) != (ssize_t)sizeof e)
            _exit(6);
        _exit(7);
    }
    close(out[1]);
    close(errp[1]);
    char buf[64];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(out[0], buf + n, sizeof buf - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf - 1)
            break;
    }
    buf[n] = '\0';
    int e = 0;
    ssize_t en = read(errp[0], &e, sizeof e);
    close(out[0]);
    close(errp[0]);
    int st = esc_reap(pid);
    esc_x_member_int(o, "probe_uid", (long long)getuid());
    esc_x_member_int(o, "probe_euid", (long long)geteuid());
    if (en == (ssize_t)sizeof e) {
        esc_try_result(o, "exec", false, e);
        return;
    }
    long euid = -1;
    buf[strcspn(buf, "\n")] = '\0';
    if (!esc_parse_long(buf, 0, LONG_MAX, &euid)) {
        esc_probe_error(o, 0, "%s -u printed '%s'", argv[0], buf);
        esc_describe_status(o, "child", st);
        return;
    }
    esc_x_member_int(o, "euid", euid);
    if (euid == 0 && geteuid() != 0) {
        o->escaped = true;
        esc_detail(o, "the setuid program ran with euid 0 (probe euid %ld)", (long)geteuid());
    } else {
        o->err = EPERM;
        esc_detail(o, "the setuid program ran with euid %ld (probe euid %ld)", euid,
                   (long)geteuid());
    }
}

/* ---------------------------------------------------------------- what the process was given */

void esc_a_env(struct out *o)
{
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        esc_probe_error(o, errno, "open /proc/self/environ: %s", strerror(errno));
        return;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    int e = buf ? 0 : ENOMEM;
    while (!e) {
        if (n == cap) {
            char *p = cap < (SIZE_MAX >> 1) ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                e = ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            e = errno;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (e) {
        esc_probe_error(o, e, "reading /proc/self/environ: %s", strerror(e));
        free(buf);
        return;
    }
    esc_x_key(o, "env");
    esc_x_str(o, "[");
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        size_t len = strnlen(buf + i, n - i);
        if (count++)
            esc_x_str(o, ", ");
        esc_x_json_bytes(o, buf + i, len);
        i += len + 1;
    }
    esc_x_str(o, "]");
    free(buf);
    esc_detail(o, "%zu variables", count);
}

void esc_a_fds(struct out *o)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        esc_probe_error(o, errno, "opendir /proc/self/fd: %s", strerror(errno));
        return;
    }
    int self = dirfd(d);
    esc_x_key(o, "fds");
    esc_x_str(o, "[");
    size_t count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long fd = 0;
        if (!esc_parse_long(de->d_name, 0, INT_MAX, &fd) || fd <= 2 || fd == self)
            continue;
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
        ssize_t tn = readlink(link, target, sizeof target - 1);
        if (tn < 0)
            tn = 0;
        target[tn] = '\0';
        if (count++)
            esc_x_str(o, ", ");
        esc_x_str(o, "{\"fd\": ");
        char num[24];
        int nn = snprintf(num, sizeof num, "%ld", fd);
        esc_x_raw(o, num, nn > 0 ? (size_t)nn : 0);
        esc_x_str(o, ", \"target\": ");
        esc_x_json_bytes(o, target, (size_t)tn);
        esc_x_str(o, "}");
        esc_detail(o, "fd %ld -> %s", fd, target);
    }
    esc_x_str(o, "]");
    closedir(d);
    if (count > 0) {
        o->escaped = true;
    } else {
        o->err = 0;
        esc_detail(o, "no descriptors beyond 0, 1, 2");
    }
}

/* ---------------------------------------------------------------- resources and lifetime */

void esc_a_fork_bomb(struct out *o, int argc, char **argv)
{
    long max = 0;
    if (argc < 1 || !esc_parse_long(argv[0], 1, 1000000, &max)) {
        esc_probe_error(o, EINVAL, "usage: escape fork-bomb N (1..1000000)");
        return;
    }
    long made = 0;
    int e = 0;
    while (made < max) {
        pid_t pid = fork();
        if (pid < 0) {
            e = errno;
            break;
        }
        if (pid == 0) {
            /* The children sleep (bounded, so a broken sandbox cannot leave them forever). */
            sleep(30);
            _exit(0);
        }
        made++;
    }
    esc_x_member_int(o, "children", made);
    if (made < max) {
        esc_try_result(o, "fork", false, e);
        esc_detail(o, "stopped after %ld of %ld children", made, max);
    } else {
        esc_try_result(o, "fork", true, 0);
        esc_detail(o, "all %ld children forked", max);
    }
}

void esc_a_balloon(struct out *o, int argc, char **argv)
{
    long mib = 0;
    if (argc < 1 || !esc_parse_long(argv[0], 1, 1L << 20, &mib)) {
        esc_probe_error(o, EINVAL, "usage: escape balloon MB (1..1048576)");
        return;
    }
    const size_t chunk = 1u << 20;
    char **chunks = calloc((size_t)mib, sizeof *chunks);
    if (!chunks) {
        esc_try_result(o, "malloc", false, ENOMEM);
        return;
    }
    long done = 0;
    for (; done < mib; done++) {
        char *p = malloc(chunk);
        if (!p)
            break;
        volatile char *v = p;
        for (size_t i = 0; i < chunk; i += 4096)
            v[i] = (char)(i >> 12);
        chunks[done] = p; /* all of it stays charged until the end */
    }
    for (long i = 0; i < done; i++)
        free(chunks[i]);
    free(chunks);
    esc_x_member_int(o, "mib", done);
    if (done < mib) {
        esc_try_result(o, "malloc", false, ENOMEM);
        esc_detail(o, "stopped after %ld of %ld MiB", done, mib);
    } else {
        esc_try_result(o, "allocate and touch", true, 0);
        esc_detail(o, "all %ld MiB allocated and touched", mib);
    }
}

void esc_a_background(struct out *o, int argc, char **argv)
{
    const char *path = argc > 0 ? argv[0] : "/workspace/background.marker";
    pid_t pid = fork();
    if (pid < 0) {
        esc_try_result(o, "fork", false, errno);
        return;
    }
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        pid_t d = fork();
        if (d < 0)
            _exit(2);
        if (d > 0)
            _exit(0);
        /* The daemon: no stdio (so nothing holds the caller's pipes), a marker every 100 ms, 60 s
         * at most. */
        int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            dup2(nul, 2);
            if (nul > 2)
                close(nul);
        }
        char line[64];
        int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
        for (int i = 0; i < 600; i++) {
            int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0) {
                if (!esc_write_all(fd, line, n > 0 ? (size_t)n : 0)) {
                    close(fd);
                    _exit(3);
                }
                close(fd);
            }
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        _exit(0);
    }
    int st = esc_reap(pid);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        esc_try_result(o, "setsid + fork", false, st < 0 ? errno : EPERM);
        esc_describe_status(o, "intermediate child", st);
        return;
    }
    o->escaped = true;
    esc_detail(o, "daemon started, appending its pid to %s every 100 ms", path);
}
