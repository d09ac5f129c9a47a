/*
 * http_parse_bench.c - request-head parsing speed: Paddock's parser (src/http/parse.c) side by side with
 * nodejs/http-parser 2.9 (Debian's libhttp-parser-dev), the C parser most projects would pick instead.
 *
 * Both do the same job on the same bytes: find the method, target, version and every header name/value
 * span of one complete head. http-parser reports spans through callbacks; ours returns them in a struct.
 * Paddock's parser additionally validates the target form, Host, framing and every refusal listed in
 * parse.h, so this measures what strictness costs (or saves).
 *
 * Output: one logfmt line per (case, parser) with ns/op as the median of REPS runs, then the ratio.
 * Build and run: bench/run-http-parse.sh (writes bench/results/http_parse.txt).
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/parse.h"

#define REPS 7

struct spans {
    const char *p[64];
    size_t n[64];
    size_t count;
};

static int on_span(http_parser *hp, const char *at, size_t len)
{
    struct spans *s = hp->data;
    if (s->count < 64) {
        s->p[s->count] = at;
        s->n[s->count] = len;
        s->count++;
    }
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    (void)hp;
    return 1; /* head only: do not look for a body */
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static volatile size_t sink;

static double bench_paddock(const char *buf, size_t len, long iters)
{
    struct pd_http_request req;
    struct pd_http_error err;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        long r = pd_http_parse_request(buf, len, NULL, &req, &err);
        if (r <= 0) {
            fprintf(stderr, "paddock parser refused the benchmark input: %s\n", err.reason);
            exit(1);
        }
        sink += req.nheaders;
    }
    return (now_ns() - t0) / (double)iters;
}

static double bench_http_parser(const char *buf, size_t len, long iters)
{
    http_parser_settings settings;
    memset(&settings, 0, sizeof settings);
    settings.on_url = on_span;
    settings.on_header_field = on_span;
    settings.on_header_value = on_span;
    settings.on_headers_complete = on_headers_complete;
    struct spans s;
    http_parser hp;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        s.count = 0;
        http_parser_init(&hp, HTTP_REQUEST);
        hp.data = &s;
        size_t n = http_parser_execute(&hp, &settings, buf, len);
        if (n != len || HTTP_PARSER_ERRNO(&hp) != HPE_OK) {
            fprintf(stderr, "http-parser refused the benchmark input: %s\n",
                    http_errno_description(HTTP_PARSER_ERRNO(&hp)));
            exit(1);
        }
        sink += s.count;
    }
    return (now_ns() - t0) / (double)iters;
}

static double median(double (*fn)(const char *, size_t, long), const char *buf, size_t len, long iters)
{
    double v[REPS];
    fn(buf, len, iters / 10); /* warm up */
    for (int i = 0; i < REPS; i++)
        v[i] = fn(buf, len, iters);
    qsort(v, REPS, sizeof v[0], cmp_double);
    return v[REPS / 2];
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    static const struct {
        const char *name;
        const char *head;
    } cases[] = {
        {"small", "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8002\r\n\r\n"},
        {"agent_api",
         "POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\nUser-Agent: claude-cli/1.0.0 (external, cli)\r\n"
         "Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: 1834\r\n"
         "anthropic-version: 2023-06-01\r\nx-api-key: placeholder\r\nAccept-Encoding: gzip, deflate\r\n"
         "Connection: keep-alive\r\n\r\n"},
        {"proxy_absolute",
         "GET http://registry.npmjs.org/left-pad HTTP/1.1\r\nHost: registry.npmjs.org\r\n"
         "User-Agent: npm/10.8.2 node/v20.20.2 linux x64 workspaces/false\r\nAccept: application/json\r\n"
         "npm-command: install\r\nAccept-Encoding: gzip,deflate\r\nConnection: keep-alive\r\n\r\n"},
        {"browser_large",
         "GET /search?q=paddock+sandbox&ie=UTF-8 HTTP/1.1\r\nHost: www.example.com\r\n"
         "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36\r\n"
         "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
         "Accept-Language: en-US,en;q=0.9\r\nAccept-Encoding: gzip, deflate, br\r\nReferer: https://www.example.com/\r\n"
         "Cookie: session=0123456789abcdef0123456789abcdef; prefs=dark-mode; _ga=GA1.2.1234567890.1234567890; "
         "_gid=GA1.2.0987654321.0987654321; consent=yes; tz=Europe%2FBerlin\r\n"
         "Sec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-Site: same-origin\r\nSec-Fetch-User: ?1\r\n"
         "Upgrade-Insecure-Requests: 1\r\nCache-Control: max-age=0\r\nDNT: 1\r\nConnection: keep-alive\r\n\r\n"},
    };
    printf("# ns per request head, median of %d runs of %ld iterations; lower is better\n", REPS, iters);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].head);
        double ours = median(bench_paddock, cases[i].head, len, iters);
        double peer = median(bench_http_parser, cases[i].head, len, iters);
        printf("case=%s bytes=%zu paddock_ns=%.1f http_parser_ns=%.1f paddock_vs_http_parser=%.2fx\n", cases[i].name,
               len, ours, peer, peer / ours);
    }
    return 0;
}
