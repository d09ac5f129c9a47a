#!/usr/bin/env bash
# `make demo`: the standalone product on this machine, with nothing from outside.
#
# A loopback HTTPS origin (api.demo.test on 127.77.0.1:443, with a certificate from a CA this script
# creates) stands in for an agent's API. A demo policy allows it and gives the gateway an API key that
# the agent never sees (a credential file in the workspace, masked inside; alias demo.devbox.local).
# A scripted agent inside `paddock run` then tries, in order: an allowed HTTPS request through the
# proxy, a blocked domain, the API key through the alias, a denied DNS name, reading the credential
# file, a direct connection that bypasses the proxy, a raw socket, and writing outside the workspace.
# It prints expected and observed outcomes; this script exits 0 only if every outcome was the expected
# one (and the key reached the origin but not the agent).
#
# Without a terminal on stdin, or with PADDOCK_DEMO_ONESHOT=1 (how `make test` runs it), it stops there.
# In a terminal it then opens a shell inside the same sandbox; everything stops when that shell exits.
# Every process it starts is stopped by PID; its files live in one temporary directory, removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${PADDOCK_BIN:-build/paddock}")
ORIGIN_ADDR=127.77.0.1 # a loopback address of its own: port 443 there is the demo's
oneshot=0
[ "${PADDOCK_DEMO_ONESHOT:-}" = 1 ] || [ ! -t 0 ] && oneshot=1

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
die() { echo "make demo: $*" >&2; exit 1; }

work=$(mktemp -d /tmp/paddock-demo.XXXXXX)
chmod 755 "$work"
origin_pid=""
cleanup() {
    local rc=$?
    if [ -n "$origin_pid" ]; then
        kill "$origin_pid" 2>/dev/null || true
        wait "$origin_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Paddock $("$BIN" version | cut -d' ' -f2): what this host offers the sandbox (paddock doctor)"
"$BIN" doctor | sed 's/^/  /' || true

# ---- the stand-in API: a CA, a certificate for api.demo.test, an HTTPS origin on loopback
mkdir -p "$work/ws/secrets"
(
    cd "$work"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -subj "/CN=Paddock demo CA" -keyout ca.key -out demo-ca.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=api.demo.test" \
        -keyout origin.key -out origin.csr 2>/dev/null
    printf 'subjectAltName=DNS:api.demo.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
        >origin.ext
    openssl x509 -req -in origin.csr -CA demo-ca.pem -CAkey ca.key -CAcreateserial -days 1 \
        -extfile origin.ext -out origin.pem 2>/dev/null
) || die "openssl could not create the demo CA and certificate"
cp "$work/demo-ca.pem" "$work/ws/demo-ca.pem"
key="demo-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
umask_old=$(umask); umask 077
printf '%s\n' "$key" >"$work/ws/secrets/demo-api-key"
umask "$umask_old"

cat >"$work/origin.py" <<'PY'
# The demo's stand-in API: HTTPS on ADDR:443. /hello greets; /whoami says whether the x-api-key header
# it received is the demo key (never echoing a value). One line per request on stdout.
import http.server, json, os, ssl, sys
KEY = os.environ["DEMO_KEY"]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        got = self.headers.get("x-api-key")
        verdict = "missing" if got is None else ("received, matches the demo key" if got == KEY else "wrong value")
        if self.path == "/hello":
            body = b"hello from api.demo.test, over TLS\n"
        elif self.path == "/whoami":
            body = (json.dumps({"x-api-key": verdict}) + "\n").encode()
        else:
            self.send_error(404)
            return
        print(f"origin: GET {self.path} x-api-key={verdict}", flush=True)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer((sys.argv[1], 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("origin: listening", flush=True)
srv.serve_forever()
PY
DEMO_KEY=$key /usr/bin/python3 "$work/origin.py" "$ORIGIN_ADDR" "$work/origin.pem" "$work/origin.key" \
    >"$work/origin.log" 2>&1 &
origin_pid=$!
for _ in $(seq 100); do
    grep -q "origin: listening" "$work/origin.log" 2>/dev/null && break
    kill -0 "$origin_pid" 2>/dev/null || break
    sleep 0.05
done
grep -q "origin: listening" "$work/origin.log" ||
    die "the demo origin could not listen on $ORIGIN_ADDR:443 (run make demo as root): $(cat "$work/origin.log")"

# ---- the policy: one file for the gateway and the sandbox (docs/policy.md)
cat >"$work/demo.yaml" <<YAML
sandbox_id: demo
allow:
  - host: api.demo.test            # the stand-in API, and nothing else
    ports: [443]
    allow_private: true            # it lives on loopback in this demo
credentials:
  - name: demo-api-key
    domain: api.demo.test
    header: x-api-key
    format: "{value}"
    alias: demo                    # http://demo.devbox.local/... -> https://api.demo.test/... + key
    value_file: ws/secrets/demo-api-key
upstream:
  ca_file: demo-ca.pem             # the CA this demo created
  hosts:
    api.demo.test: ["$ORIGIN_ADDR"]
sandbox:
  limits: {memory: 512M, pids: 256}
YAML
say "The policy (demo.yaml): the gateway's allowlist and credential, and the sandbox's limits"
sed 's/^/  /' "$work/demo.yaml"
say "paddock policy explain: the gateway's own decision, before anything runs"
for t in https://api.demo.test/ http://demo.devbox.local/whoami https://blocked.demo.test/; do
    printf '  $ paddock policy explain demo.yaml %s\n' "$t"
    "$BIN" policy explain "$work/demo.yaml" "$t" | sed 's/^/    /' || true
done

# ---- the scripted agent
cat >"$work/ws/agent.sh" <<'SH'
# A scripted "agent": each line tries one thing and says whether it was allowed.
bad=0
: >/workspace/results.txt
check() { # expected what command...
    want=$1 what=$2; shift 2
    if "$@" >/tmp/out 2>&1; then got=allowed; else got=refused; fi
    mark=ok; [ "$got" = "$want" ] || { mark=UNEXPECTED; bad=1; }
    printf '  %-62s %-8s %-8s %s\n' "$what" "$want" "$got" "$mark" | tee -a /workspace/results.txt
}
CA=/workspace/demo-ca.pem
printf '  %-62s %-8s %-8s\n' "what the agent tries" expected observed
check allowed "1. HTTPS to the allowed API, through the proxy" \
    curl -sf --cacert $CA https://api.demo.test/hello
check refused "2. a domain the policy does not list" curl -sf http://blocked.demo.test/
printf '     the denial it reads: %s\n' "$(curl -s http://blocked.demo.test/ | head -c 160)"
check allowed "3. the API key via http://demo.devbox.local (gateway injects)" \
    sh -c 'curl -sf http://demo.devbox.local/whoami | grep -q "received, matches"'
printf '     the origin says: %s\n' "$(curl -s http://demo.devbox.local/whoami)"
check refused "4. DNS for a name no rule allows (exfil.example)" getent hosts exfil.example
check refused "5. reading the key file (in the workspace, but masked)" \
    cat /workspace/secrets/demo-api-key
check refused "6. a direct connection that bypasses the proxy" \
    curl -sf --noproxy '*' --max-time 3 --cacert $CA --resolve api.demo.test:443:127.77.0.1 \
    https://api.demo.test/hello
check refused "7. a raw socket" \
    /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)'
check refused "8. writing outside the workspace (/etc)" sh -c 'echo x > /etc/paddock-demo'
env >/workspace/env.txt # checked outside: no variable holds the key
if [ "${PADDOCK_DEMO_SHELL:-}" = 1 ]; then
    printf '\nYou are inside the same sandbox (exit to leave). Try: curl https://example.com/ ;\n'
    printf 'curl http://demo.devbox.local/whoami ; cat secrets/demo-api-key ; ls ~ ; ps ax\n\n'
    export PS1='paddock-demo:\w\$ '
    exec bash --norc -i
fi
exit $bad
SH

say "Inside the sandbox: paddock run --policy demo.yaml -- sh agent.sh"
opts=(--policy "$work/demo.yaml" --log "$work/run.log")
[ $oneshot = 1 ] || opts+=(--env PADDOCK_DEMO_SHELL=1)
set +e
(cd "$work/ws" && "$BIN" run "${opts[@]}" -- sh agent.sh)
rc=$?
set -e

say "What the gateway logged for this sandbox (run.log: one JSON line per request and DNS query)"
/usr/bin/python3 - "$work/run.log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("event") == "access":
        what = f'{r["method"]} {r["host"]}:{r["port"]}{r.get("path") or ""}'
        extra = r.get("error") or (f'credential {r["credential"]} injected' if r.get("credential") else "")
    elif r.get("event") == "dns":
        what, extra = f'DNS {r["type"]} {r["name"]}', r.get("error") or r.get("rcode")
    else:
        continue
    print(f'  {r["decision"]:<6} {what:<48} {extra or ""}')
PY
echo "  the origin's own log:"
sed 's/^/    /' "$work/origin.log"

failed=0
want_rows=8
rows=$(grep -c . "$work/ws/results.txt" 2>/dev/null || echo 0)
if [ "$rows" != "$want_rows" ] || grep -q UNEXPECTED "$work/ws/results.txt"; then
    echo "make demo: $rows of $want_rows outcomes observed, or one was not the expected one" >&2
    failed=1
fi
if grep -qF "$key" "$work/ws/env.txt" "$work/run.log" 2>/dev/null; then
    echo "make demo: the API key appeared inside the sandbox or in the log" >&2
    failed=1
fi
if ! grep -q "GET /whoami x-api-key=received, matches the demo key" "$work/origin.log"; then
    echo "make demo: the origin never received the injected key" >&2
    failed=1
fi
if [ $oneshot = 1 ] && [ $rc != 0 ] && [ $failed = 0 ]; then
    echo "make demo: paddock run exited with status $rc" >&2
    failed=1
fi
[ $failed = 0 ] || exit 1
cat <<'TXT'

Every outcome was the expected one. Nothing above was simulated: build/paddock ran a real sandbox (user,
mount, PID, network, UTS, IPC and cgroup namespaces, Landlock, a syscall filter, no capabilities) whose
only way out was its own gateway and DNS filter, in front of a real HTTPS origin on loopback; the key
reached the origin and never the agent. Next: examples/ holds policies for real agents
(paddock run --policy examples/claude-code.yaml -- claude); docs/policy.md describes every key.
TXT
