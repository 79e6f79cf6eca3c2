#!/usr/bin/env bash
# The registry client end to end with the real binary against Debian's
# docker-registry (distribution 2.8) on loopback: plain http, htpasswd
# Basic auth, the Bearer token flow (auth.token with a loopback token server
# signing JWTs with a test key, tests/lib/token_server.py), and https with a
# test certificate.  skopeo and umoci are the independent readers.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh
. tests/lib/base-image.sh
. tests/lib/imports.sh
. tests/lib/registry.sh

bin=${UDFB_BIN:?}
work=$(mktemp -d /tmp/udfb-registry-test.XXXXXX)
token_pid=
cleanup() {
	udfb_imports_stop
	[ -n "$token_pid" ] && kill "$token_pid" 2>/dev/null
	for n in R1 R2 R3 R4; do use_reg "$n" && udfb_registry_stop; done
	rm -rf "$work"
	return 0
}
trap cleanup EXIT
tiny=$(udfb_tiny_image) || { echo "not ok 1 - tiny base image"; exit 1; }
tiny_digest=$(udfb_oci_digest "$tiny" tiny)
udfb_imports_start "$work"
for name in read_stage_dup_basename decimal_types; do udfb_request "$name" "$work/$name.json"; done
req=$work/read_stage_dup_basename.json
export DOCKER_CONFIG=$work/no-docker-config # no credentials unless a test gives some
unset UDFB_REGISTRY_INSECURE UDFB_REGISTRY_CA_BUNDLE UDFB_REGISTRY_RETRIES

# --- several registries at once: each one's variables saved under a name ---
start_reg() { # start_reg NAME [VAR=VALUE...]: start one with those settings, remember it as NAME
	local name=$1 v rc
	shift
	unset REGISTRY UDFB_REGISTRY_PID UDFB_REGISTRY_DIR UDFB_REGISTRY_LOG
	for v in "$@"; do export "${v?}"; done
	udfb_registry_start
	rc=$?
	unset UDFB_REGISTRY_AUTH UDFB_REGISTRY_TLS_CERT UDFB_REGISTRY_TLS_KEY
	[ $rc -eq 0 ] || return 1
	eval "$name=\$REGISTRY ${name}_PID=\$UDFB_REGISTRY_PID ${name}_DIR=\$UDFB_REGISTRY_DIR ${name}_LOG=\$UDFB_REGISTRY_LOG"
	touch "$work/$name.started"
}
use_reg() { # make NAME the registry the udfb_registry_* functions act on
	[ -f "$work/$1.started" ] || return 1
	eval "export REGISTRY=\$$1 UDFB_REGISTRY_PID=\$${1}_PID UDFB_REGISTRY_DIR=\$${1}_DIR UDFB_REGISTRY_LOG=\$${1}_LOG"
}
hits() { grep -c -- "$2" "$1" 2>/dev/null || true; } # hits LOG PATTERN: request lines matching
json_get() { /usr/bin/python3 -c 'import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
raw_digest() { echo "sha256:$(skopeo inspect --raw "$@" 2>/dev/null | sha256sum | cut -d' ' -f1)"; }
build() { # build REQ BASE DEST STORE [extra args]
	"$bin" build "$1" --base "$2" --dest "$3" --store "$4" "${@:5}"
}
docker_config() { # docker_config DIR JSON: a DOCKER_CONFIG directory
	mkdir -p "$1"
	printf '%s\n' "$2" >"$1/config.json"
}
b64() { printf '%s' "$1" | base64 -w0; }

start_reg R1 || { echo "not ok 1 - start docker-registry"; exit 1; }
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$tiny:tiny" "docker://$R1/udfb/base:tiny" >/dev/null 2>&1
check_eq "skopeo pushed the tiny base with its digest" "$(raw_digest --tls-verify=false "docker://$R1/udfb/base:tiny")" "$tiny_digest"
base_layers=$(skopeo inspect --raw --tls-verify=false "docker://$R1/udfb/base:tiny" | json_get '" ".join(l["digest"] for l in v["layers"])')

# --- plain registry: docker:// base, docker:// dest ---
out=$(build "$req" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/udf" "$work/s1" 2>"$work/err"); rc=$?
check "build --base docker:// --dest docker:// succeeds (exit $rc: $(head -c 300 "$work/err"))" [ $rc -eq 0 ]
digest=$(echo "$out" | json_get 'v["manifest_digest"]')
key=$(echo "$out" | json_get 'v["key"]')
tag=udf-${key#sha256:}
check_eq "the image names the registry, the key's tag and the digest" "$(echo "$out" | json_get 'v["image"]')" \
	"docker://$R1/udfb/udf:$tag@$digest"
check_eq "skopeo inspect --raw: the sha256 of the registry's bytes is our manifest digest" \
	"$(raw_digest --tls-verify=false "docker://$R1/udfb/udf:$tag")" "$digest"
check "skopeo copy to an OCI layout (verifies every blob)" quiet skopeo copy --src-tls-verify=false \
	"docker://$R1/udfb/udf:$tag" "oci:$work/copy:t"
check "umoci unpacks the copy (checks every diff_id)" quiet umoci unpack --rootless --image "$work/copy:t" "$work/bundle"
check "the unpacked image has the stub and the base's files" \
	bash -c 'cmp -s "$1/rootfs/app/server.py" templates/server.py && [ -n "$(ls "$1/rootfs" | grep -v app)" ]' _ "$work/bundle"
gets=0
for l in $base_layers; do gets=$((gets + $(hits "$R1_LOG" "\"GET /v2/udfb/base/blobs/$l"))); done
check_eq "base layers were never downloaded (no GET of a base blob)" "$gets" 0
check "base layers were mounted across repositories (201)" grep -q '"POST /v2/udfb/udf/blobs/uploads/?mount=sha256:[0-9a-f]*&from=udfb/base HTTP/1.1" 201' "$R1_LOG"
check_eq "the manifest went last" "$(grep -E '"(PUT|POST|PATCH) /v2/udfb/udf/' "$R1_LOG" | tail -n 1 | grep -c "PUT /v2/udfb/udf/manifests/$tag")" 1
# --- the registry as the shared cache: a replica with an empty store ---
uploads_before=$(hits "$R1_LOG" '"PUT /v2/udfb/udf/blobs/uploads')
out2=$(build "$req" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/udf" "$work/s-replica" 2>"$work/err2"); rc=$?
check_eq "a replica with an empty store finds the image in the registry (no build)" \
	"$(echo "$out2" | json_get '(v["cached"], v["manifest_digest"])')" "(True, '$digest')"
check_eq "and uploads nothing" "$(hits "$R1_LOG" '"PUT /v2/udfb/udf/blobs/uploads')" "$uploads_before"
check "its store holds only the manifest and config, and verifies" bash -c \
	'[ "$(ls "$1/blobs/sha256" | wc -l)" -eq 2 ] && "$2" cache verify --store "$1" >/dev/null' _ "$work/s-replica" "$bin"
out3=$(build "$req" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/udf:latest" "$work/s-replica2" 2>/dev/null)
check "a tag chosen by the operator is never taken for the key's image" bash -c '[ "$(echo "$1" | grep -c "\"cached\":false")" -eq 1 ]' _ "$out3"
check "cache verify accepts a store whose base layers stay in the registry" quiet "$bin" cache verify --store "$work/s1"

uploads() { hits "$1" '"POST /v2/udfb/udf/blobs/uploads/'; }
before=$(uploads "$R1_LOG")
build "$req" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/udf" "$work/s1" >/dev/null 2>&1
check_eq "a second build (cache hit) pushes nothing" "$(uploads "$R1_LOG")" "$before"
heads=$(hits "$R1_LOG" '"HEAD /v2/udfb/udf/blobs/')
out=$(build "$req" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/udf:again" "$work/s1b" 2>/dev/null)
check_eq "a rebuild in a fresh store to a new tag: same digest" "$(echo "$out" | json_get 'v["manifest_digest"]')" "$digest"
check_eq "... and no blob uploaded again (all found by HEAD)" "$(uploads "$R1_LOG")" "$before"
check "... which did HEAD the blobs" [ "$(hits "$R1_LOG" '"HEAD /v2/udfb/udf/blobs/')" -gt "$heads" ]
out=$(build "$work/decimal_types.json" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/udf" "$work/s1" 2>"$work/err")
new=$(( $(uploads "$R1_LOG") - before ))
check_eq "a second image sharing base and stub uploads only its own layer and config" "$new" 2

# --- the same request to oci: and to docker:// gives the same digest ---
out=$(build "$req" "oci:$tiny:tiny" "oci:$work/layout:x" "$work/s2" 2>/dev/null)
check_eq "oci: base to oci: dest gives the docker:// digest" "$(echo "$out" | json_get 'v["manifest_digest"]')" "$digest"
out=$(build "$req" "docker://$R1/udfb/base:tiny" "oci:$work/layout2:x" "$work/s1" 2>"$work/err")
check_eq "docker:// base to oci: dest gives it too" "$(echo "$out" | json_get 'v["manifest_digest"]')" "$digest"
check "and that layout is complete (base layers fetched into it; umoci unpacks it)" quiet umoci unpack --rootless --image "$work/layout2:x" "$work/bundle2"

# --- an index base resolves to linux/amd64 (or the platform asked for) ---
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$tiny:tiny" "docker://$R1/udfb/multi:amd" >/dev/null 2>&1
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$work/layout:x" "docker://$R1/udfb/multi:arm" >/dev/null 2>&1
/usr/bin/python3 - "$tiny_digest" "$digest" "$work/index.json" "$R1" <<'PY'
import json, subprocess, sys
amd, arm, out, reg = sys.argv[1:5]
def size(ref):
    return len(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "docker://%s/udfb/multi@%s" % (reg, ref)], capture_output=True, check=True).stdout)
m = lambda d, arch: {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": size(d), "platform": {"os": "linux", "architecture": arch}}
json.dump({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [m(arm, "arm64"), m(amd, "amd64")]}, open(out, "w"))
PY
curl -s -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' --data-binary "@$work/index.json" "http://$R1/v2/udfb/multi/manifests/index"
check_eq "an index base resolves to its linux/amd64 manifest (same key as the tiny base)" \
	"$("$bin" key "$req" --base "docker://$R1/udfb/multi:index" 2>&1)" "$key"
"$bin" dockerfile "$req" --base "docker://$R1/udfb/multi:index" --out "$work/ctx" >/dev/null 2>&1
check "its Dockerfile pins the amd64 manifest by digest" grep -qx "FROM $R1/udfb/multi@$tiny_digest" "$work/ctx/Dockerfile"
check "--platform linux/arm64 picks the other entry" \
	bash -c '[ "$("$1" key "$2" --base "docker://$3/udfb/multi:index" --platform linux/arm64)" != "$4" ]' _ "$bin" "$req" "$R1" "$key"
"$bin" key "$req" --base "docker://$R1/udfb/nothing:here" >/dev/null 2>"$work/err"; rc=$?
check "a missing base tag: exit 1, names it and the registry's code" \
	bash -c '[ "$1" -eq 1 ] && grep -q "^udf-builder: base image docker://$2/udfb/nothing:here: $2/udfb/nothing:here: .*UNKNOWN" "$3"' _ "$rc" "$R1" "$work/err"

# --- the registry goes away and comes back: the push completes on retry ---
use_reg R1
udfb_registry_kill
( sleep 1.5; udfb_registry_resume >/dev/null 2>&1; echo "$UDFB_REGISTRY_PID" >"$work/r1.pid" ) &
resumer=$!
out=$(build "$work/decimal_types.json" "oci:$tiny:tiny" "docker://$R1/udfb/retry" "$work/s3" 2>"$work/err"); rc=$?
wait "$resumer"
R1_PID=$(cat "$work/r1.pid")
check "a push started while the registry is down completes once it is back (exit $rc: $(head -c 200 "$work/err"))" [ $rc -eq 0 ]
d=$(echo "$out" | json_get 'v["manifest_digest"]' 2>/dev/null)
check "and the pushed image is whole (skopeo copy verifies every blob)" quiet skopeo copy --src-tls-verify=false "docker://$R1/udfb/retry@$d" "oci:$work/copy3:t"
use_reg R1
udfb_registry_kill
UDFB_REGISTRY_RETRIES=1 build "$work/decimal_types.json" "oci:$tiny:tiny" "docker://$R1/udfb/gone" "$work/s3" >/dev/null 2>"$work/err"; rc=$?
check "with the registry down for good: exit 1, one line naming the host" \
	bash -c '[ "$1" -eq 1 ] && [ "$(wc -l <"$2")" -eq 1 ] && grep -q "^udf-builder: publish to docker://$3/udfb/gone: $3: .*connect" "$2"' _ "$rc" "$work/err" "$R1"
udfb_registry_resume >/dev/null 2>&1
R1_PID=$UDFB_REGISTRY_PID
check "and its tag names nothing" bash -c '! skopeo inspect --raw --tls-verify=false "docker://$1/udfb/gone:udf-x" >/dev/null 2>&1 && [ "$(curl -s -o /dev/null -w "%{http_code}" "http://$1/v2/udfb/gone/tags/list")" != 200 ]' _ "$R1"

# --- htpasswd Basic auth, credentials from config.json ---
htpasswd -Bbn udfb 's3cret-pw' >"$work/htpasswd" 2>/dev/null
start_reg R2 "UDFB_REGISTRY_AUTH=auth:
  htpasswd:
    realm: udfb-test
    path: $work/htpasswd" || not_ok "start docker-registry with htpasswd"
skopeo copy --quiet --preserve-digests --dest-tls-verify=false --dest-creds 'udfb:s3cret-pw' "oci:$tiny:tiny" "docker://$R2/udfb/base:tiny" >/dev/null 2>&1
docker_config "$work/dc-good" "{\"auths\": {\"$R2\": {\"auth\": \"$(b64 'udfb:s3cret-pw')\"}}}"
out=$(DOCKER_CONFIG=$work/dc-good UDFB_LOG_LEVEL=debug build "$req" "docker://$R2/udfb/base:tiny" "docker://$R2/udfb/udf" "$work/s4" 2>"$work/err"); rc=$?
check "Basic auth with config.json auths: build and push succeed (exit $rc: $(grep -v '"level":"debug"' "$work/err" | head -c 200))" [ $rc -eq 0 ]
check_eq "the pushed manifest is ours" "$(raw_digest --tls-verify=false --creds 'udfb:s3cret-pw' "docker://$R2/udfb/udf:$tag")" "$digest"
check "no password, nor its base64, in a debug log" bash -c '! grep -q "s3cret-pw\|$1" "$2"' _ "$(b64 'udfb:s3cret-pw')" "$work/err"
docker_config "$work/dc-bad" "{\"auths\": {\"http://$R2/v2/\": {\"auth\": \"$(b64 'udfb:wrong-pw-42')\"}}}"
DOCKER_CONFIG=$work/dc-bad UDFB_LOG_LEVEL=debug build "$req" "docker://$R2/udfb/base:tiny" "docker://$R2/udfb/udf" "$work/s5" >/dev/null 2>"$work/err"; rc=$?
check_eq "a wrong password exits 1" "$rc" 1
check "with one clear line naming the registry, its code and where the credentials came from" \
	grep -q "^udf-builder: base image docker://$R2/udfb/base:tiny: $R2/udfb/base:tiny: UNAUTHORIZED: .*(credentials from $work/dc-bad/config.json)$" "$work/err"
check "and never the password" bash -c '! grep -q "wrong-pw-42\|$1" "$2"' _ "$(b64 'udfb:wrong-pw-42')" "$work/err"
build "$req" "docker://$R2/udfb/base:tiny" "docker://$R2/udfb/udf" "$work/s5" >/dev/null 2>"$work/err"; rc=$?
check "no credentials at all: exit 1, says so" bash -c '[ "$1" -eq 1 ] && grep -q "UNAUTHORIZED: .*(no credentials for $2)" "$3"' _ "$rc" "$R2" "$work/err"
mkdir -p "$work/helpers"
cat >"$work/helpers/docker-credential-udfbtest" <<EOF
#!/bin/sh
read -r server || true
echo "\$server" >"$work/helper.stdin"
[ "\$1" = get ] && [ "\$server" = "$R2" ] || { echo "credentials not found in native keychain"; exit 1; }
echo '{"ServerURL": "$R2", "Username": "udfb", "Secret": "s3cret-pw"}'
EOF
chmod +x "$work/helpers/docker-credential-udfbtest"
docker_config "$work/dc-helper" "{\"credHelpers\": {\"$R2\": \"udfbtest\"}, \"auths\": {\"$R2\": {\"auth\": \"$(b64 'udfb:wrong-pw-42')\"}}}"
PATH=$work/helpers:$PATH DOCKER_CONFIG=$work/dc-helper build "$req" "docker://$R2/udfb/base:tiny" "docker://$R2/udfb/udf:helper" "$work/s4" >/dev/null 2>"$work/err"; rc=$?
check "credHelpers: docker-credential-<name> get supplies them, before auths (exit $rc: $(head -c 200 "$work/err"))" [ $rc -eq 0 ]
check_eq "the helper read the registry host on stdin" "$(cat "$work/helper.stdin" 2>/dev/null)" "$R2"
docker_config "$work/dc-store" "{\"credsStore\": \"udfbtest\"}"
PATH=$work/helpers:$PATH DOCKER_CONFIG=$work/dc-store build "$req" "docker://$R2/udfb/base:tiny" "docker://$R2/udfb/udf:store" "$work/s4" >/dev/null 2>&1
check_eq "credsStore works the same way" "$?" 0

# --- a docker:// base in one registry, the destination in another ---
base_gets() { local n=0 l; for l in $base_layers; do n=$((n + $(hits "$R1_LOG" "\"GET /v2/udfb/base/blobs/$l HTTP/1.1\" 200"))); done; echo $n; }
gets_before=$(base_gets)
out=$(DOCKER_CONFIG=$work/dc-good build "$req" "docker://$R1/udfb/base:tiny" "docker://$R2/udfb/cross" "$work/s6" 2>"$work/err"); rc=$?
check "base in one registry, dest in another (exit $rc: $(head -c 200 "$work/err"))" [ $rc -eq 0 ]
check_eq "same digest" "$(echo "$out" | json_get 'v["manifest_digest"]' 2>/dev/null)" "$digest"
check_eq "each base layer was read once from the base's registry (streamed across)" "$(( $(base_gets) - gets_before ))" "$(echo $base_layers | wc -w)"
check "and written with PATCH into the other" grep -q '"PATCH /v2/udfb/cross/blobs/uploads/' "$R2_LOG"
check "skopeo copy of the result verifies every blob" quiet skopeo copy --src-tls-verify=false --src-creds 'udfb:s3cret-pw' "docker://$R2/udfb/cross:$tag" "oci:$work/copy4:t"

# --- the Bearer token flow (auth.token, JWTs from a loopback token server) ---
mkdir -p "$work/token"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/token/key.pem" -out "$work/token/cert.pem" -days 2 \
	-subj /CN=udfb-test-token >/dev/null 2>&1
/usr/bin/python3 tests/lib/token_server.py "$work/token" udfb-test-registry udfb-test-issuer 'tuser:t0ken-pw' 'refresh-xyz' >"$work/token/port" &
token_pid=$!
for _ in $(seq 1 50); do [ -s "$work/token/port" ] && break; sleep 0.1; done
read -r token_port <"$work/token/port"
start_reg R3 "UDFB_REGISTRY_AUTH=auth:
  token:
    realm: http://127.0.0.1:$token_port/token
    service: udfb-test-registry
    issuer: udfb-test-issuer
    rootcertbundle: $work/token/cert.pem" || not_ok "start docker-registry with token auth"
skopeo copy --quiet --preserve-digests --dest-tls-verify=false --dest-creds 'tuser:t0ken-pw' "oci:$tiny:tiny" "docker://$R3/udfb/base:tiny" >/dev/null 2>&1
: >"$work/token/requests.log"
docker_config "$work/dc-token" "{\"auths\": {\"$R3\": {\"auth\": \"$(b64 'tuser:t0ken-pw')\"}}}"
out=$(DOCKER_CONFIG=$work/dc-token build "$req" "docker://$R3/udfb/base:tiny" "docker://$R3/udfb/udf" "$work/s7" 2>"$work/err"); rc=$?
check "Bearer: build and push through the token server (exit $rc: $(head -c 300 "$work/err"))" [ $rc -eq 0 ]
check_eq "one token per scope set (pull the base; look the key up; push plus mount source), cached for the rest" \
	"$(cat "$work/token/requests.log")" "GET basic-ok repository:udfb/base:pull
GET basic-ok repository:udfb/udf:pull|repository:udfb/base:pull
GET basic-ok repository:udfb/udf:pull,push|repository:udfb/base:pull"
check_eq "the pushed manifest is ours" "$(raw_digest --tls-verify=false --creds 'tuser:t0ken-pw' "docker://$R3/udfb/udf:$tag")" "$digest"
check "the base layers were mounted under the token" grep -q '"POST /v2/udfb/udf/blobs/uploads/?mount=.*" 201' "$R3_LOG"
docker_config "$work/dc-idt" "{\"auths\": {\"$R3\": {\"identitytoken\": \"refresh-xyz\"}}}"
DOCKER_CONFIG=$work/dc-idt build "$req" "docker://$R3/udfb/base:tiny" "docker://$R3/udfb/idt" "$work/s7" >/dev/null 2>"$work/err"; rc=$?
check "an identitytoken is traded for tokens with the OAuth2 refresh grant (exit $rc: $(head -c 200 "$work/err"))" \
	bash -c '[ "$1" -eq 0 ] && grep -q "^POST refresh-ok repository:udfb/idt:pull,push" "$2"' _ "$rc" "$work/token/requests.log"
docker_config "$work/dc-tbad" "{\"auths\": {\"$R3\": {\"auth\": \"$(b64 'tuser:nope-pw-77')\"}}}"
DOCKER_CONFIG=$work/dc-tbad build "$req" "docker://$R3/udfb/base:tiny" "docker://$R3/udfb/udf" "$work/s8" >/dev/null 2>"$work/err"; rc=$?
check "a password the token server refuses: exit 1, names the token server and the registry" \
	bash -c '[ "$1" -eq 1 ] && grep -q "token server 127.0.0.1:$2 for $3: HTTP 401 (credentials from " "$4" && ! grep -q "nope-pw-77" "$4"' _ "$rc" "$token_port" "$R3" "$work/err"
build "$req" "docker://$R3/udfb/base:tiny" "docker://$R3/udfb/udf" "$work/s8" >/dev/null 2>"$work/err"; rc=$?
check "anonymous tokens grant nothing: exit 1 with the registry's code" \
	bash -c '[ "$1" -eq 1 ] && grep -q "$2/udfb/base:tiny: UNAUTHORIZED: .*(no credentials for $2)" "$3"' _ "$rc" "$R3" "$work/err"

# --- https: verified against UDFB_REGISTRY_CA_BUNDLE, or not at all for an insecure host ---
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1
start_reg R4 "UDFB_REGISTRY_TLS_CERT=$work/tls.crt" "UDFB_REGISTRY_TLS_KEY=$work/tls.key" || not_ok "start docker-registry with TLS"
build "$req" "oci:$tiny:tiny" "docker://$R4/udfb/udf" "$work/s9" >/dev/null 2>"$work/err"; rc=$?
check "https with an unknown CA is refused (exit 1, says how to trust it)" \
	bash -c '[ "$1" -eq 1 ] && grep -q "$2: .*certificate.*UDFB_REGISTRY_CA_BUNDLE" "$3"' _ "$rc" "$R4" "$work/err"
out=$(UDFB_REGISTRY_CA_BUNDLE=$work/tls.crt build "$req" "oci:$tiny:tiny" "docker://$R4/udfb/udf" "$work/s9" 2>"$work/err"); rc=$?
check "with UDFB_REGISTRY_CA_BUNDLE it pushes over https, oci: base blobs uploaded from the layout (exit $rc: $(head -c 200 "$work/err"))" [ $rc -eq 0 ]
check_eq "the pushed manifest is ours" "$(raw_digest --tls-verify=false "docker://$R4/udfb/udf:$tag")" "$digest"
check "skopeo copy over https verifies every blob" quiet skopeo copy --src-tls-verify=false "docker://$R4/udfb/udf:$tag" "oci:$work/copy5:t"
UDFB_REGISTRY_INSECURE="other:1,$R4" build "$work/decimal_types.json" "oci:$tiny:tiny" "docker://$R4/udfb/udf" "$work/s9" >/dev/null 2>&1
check_eq "a host listed in UDFB_REGISTRY_INSECURE skips verification" "$?" 0

# --- kill -9 at random moments of builds that push ---
head -c $((8 << 20)) /dev/urandom >"$work/srv/big.bin"
bad=0 unusable=0
for i in $(seq 1 10); do
	/usr/bin/python3 - "$work/kill$i.json" "$IMPORTS_PORT" "$i" <<'PY'
import json, sys
spec = {"version": 1, "kind": "udf", "language": "python", "handler": "f", "input_types": [], "result_type": "INT",
        "imports": ["@s/big.bin"], "packages": [], "runtime_version": "3.12", "code": "def f():\n    return %s\n" % sys.argv[3]}
json.dump({"spec": json.dumps(spec), "imports": [{"location": "@s/big.bin",
           "url": "http://127.0.0.1:%s/big.bin?sig=x" % sys.argv[2], "tag": "big"}]}, open(sys.argv[1], "w"))
PY
	build "$work/kill$i.json" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/killed" "$work/s-kill" >/dev/null 2>&1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 600)))"
	kill -9 $pid 2>/dev/null
	wait $pid 2>/dev/null
	"$bin" cache verify --store "$work/s-kill" >"$work/v" 2>&1 || { bad=$((bad + 1)); sed 's/^/# /' "$work/v" | head -3; }
	out=$(build "$work/kill$i.json" "docker://$R1/udfb/base:tiny" "docker://$R1/udfb/killed" "$work/s-kill" 2>"$work/err") ||
		{ unusable=$((unusable + 1)); sed 's/^/# /' "$work/err"; continue; }
	d=$(echo "$out" | json_get 'v["manifest_digest"]')
	[ "$(raw_digest --tls-verify=false "docker://$R1/udfb/killed:$(echo "$out" | json_get 'v["image"].split(":")[-2].split("@")[0]')")" = "$d" ] ||
		{ unusable=$((unusable + 1)); echo "# the registry's tag does not name $d"; }
done
check_eq "after 10 kill -9s during builds and pushes, cache verify found nothing wrong" "$bad" 0
check_eq "and every request then built and pushed, its tag naming its manifest" "$unusable" 0

tap_done
