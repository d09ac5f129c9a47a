/*
 * escape.h - what the files of the escape probe (escape.c, escape_kernel.c, escape_net.c,
 * escape_files.c, escape_proc.c) share. The probe is a test-only program that the black-box sandbox
 * tests run inside `paddock run`; never installed.
 *
 * Contract (in full at the top of escape.c): `escape ATTEMPT [ARGS]` performs ONE escape attempt
 * and prints ONE JSON line on stdout,
 *   {"attempt": "...", "result": "refused"|"escaped"|"error", "errno": "EPERM"|null,
 *    "detail": "...", ...attempt-specific members}
 * then exits 0 when the attempt was refused, 3 when it escaped, 4 on a probe error.
 *
 * Each attempt is an esc_a_NAME function that records its tries in a struct out (esc_try_result,
 * esc_try_permission, esc_probe_error, esc_detail, and the esc_x_* functions for extra members);
 * main() in escape.c picks the attempt and prints the report.
 */
#ifndef PD_TESTS_ESCAPE_H
#define PD_TESTS_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define DETAIL_MAX 4096
#define SHOW_MAX 4096

/* The report being built: the fixed members plus raw JSON members appended to extra. */
struct out {
    const char *attempt;
    bool escaped; /* some try succeeded */
    bool error; /* the probe itself failed */
    int err; /* first refusal's errno (0: none) */
    char detail[DETAIL_MAX];
    size_t dlen;
    char *extra; /* ", \"key\": value" members; NULL until the first */
    size_t xlen, xcap;
    bool oom; /* an append failed: reported as an error */
};

/* ---------------------------------------------------------------- report building (escape.c) */

void esc_detail(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void esc_x_raw(struct out *o, const char *s, size_t n);
void esc_x_str(struct out *o, const char *s);
void esc_x_json_bytes(struct out *o, const char *s, size_t n);
void esc_x_key(struct out *o, const char *key);
void esc_x_member_str(struct out *o, const char *key, const char *s, size_t n);
void esc_x_member_int(struct out *o, const char *key, long long v);
void esc_try_result(struct out *o, const char *label, bool ok, int err);
void esc_try_permission(struct out *o, const char *label, long rc, int err);
void esc_probe_error(struct out *o, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- helpers */

/* escape.c */
void esc_close_fd(int fd);
int esc_reap(pid_t pid);
void esc_describe_status(struct out *o, const char *label, int st);
bool esc_parse_long(const char *s, long lo, long hi, long *v);
int esc_in_child(int (*fn)(long), long arg, int *st);
/* escape_files.c */
bool esc_write_all(int fd, const char *s, size_t n);

/* ---------------------------------------------------------------- attempts */

/* escape_kernel.c */
void esc_a_ptrace(struct out *o);
void esc_a_process_vm_readv(struct out *o);
void esc_a_mount(struct out *o);
void esc_a_new_mount_api(struct out *o);
void esc_a_pivot_root(struct out *o);
void esc_a_unshare(struct out *o);
void esc_a_setns(struct out *o);
void esc_a_clone_newuser(struct out *o);
void esc_a_tiocsti(struct out *o);
void esc_a_io_uring(struct out *o);
void esc_a_bpf(struct out *o);
void esc_a_perf_event_open(struct out *o);
void esc_a_userfaultfd(struct out *o);
void esc_a_keyctl(struct out *o);
void esc_a_kexec_load(struct out *o);
void esc_a_init_module(struct out *o);
void esc_a_open_by_handle_at(struct out *o);
void esc_a_i386(struct out *o);
void esc_a_mknod(struct out *o);

/* escape_net.c */
void esc_a_raw_socket(struct out *o);
void esc_a_packet_socket(struct out *o);
void esc_a_vsock(struct out *o);
void esc_a_netlink_route_change(struct out *o);
void esc_a_connect(struct out *o, int argc, char **argv);
void esc_a_udp_dns(struct out *o, int argc, char **argv);
void esc_a_unix_connect(struct out *o, int argc, char **argv);
void esc_a_http(struct out *o, int argc, char **argv);

/* escape_files.c */
void esc_a_write(struct out *o, int argc, char **argv);
void esc_a_read(struct out *o, int argc, char **argv);
void esc_a_symlink_write(struct out *o, int argc, char **argv);
void esc_a_hardlink(struct out *o, int argc, char **argv);
void esc_a_chmod_suid(struct out *o, int argc, char **argv);

/* escape_proc.c */
void esc_a_caps(struct out *o);
void esc_a_setuid_gain(struct out *o, int argc, char **argv);
void esc_a_env(struct out *o);
void esc_a_fds(struct out *o);
void esc_a_fork_bomb(struct out *o, int argc, char **argv);
void esc_a_balloon(struct out *o, int argc, char **argv);
void esc_a_background(struct out *o, int argc, char **argv);

#endif
