#!/usr/bin/env bash
# deploy/: the Kubernetes manifests and the Dockerfile.
#
# - deploy/k8s/*.yaml validate against the Kubernetes OpenAPI schemas with the
#   npm package kubernetes-models and pass udf-builder's deployment policy
#   (tests/k8s/validate.js, installed with `npm ci` from tests/k8s's lock);
#   broken copies of them are refused, each for its reason.
# - The service's config in the ConfigMap, and the config the image bakes in,
#   are accepted by the real binary's config loader; the prebuild Job's
#   example input parses, and its shards cover it exactly once.
# - deploy/Dockerfile is checked statically (no Docker engine here): two
#   Debian 12 stages, the runtime stage installs the Debian package of every
#   shared library `ldd bin/udf-builder bin/udf-builder-serve` resolves
#   outside debian:12-slim, a non-root USER, an ENTRYPOINT; the CLI
#   executable does not load gRPC or libmicrohttpd (the service's alone).
# Needs node and npm (the machine's Node.js 20 and npm; npm's registry).
# shellcheck disable=SC2016 # bash -c '...' _ ARG: the child shell expands them
set -u
cd "$(dirname "$0")/../.."
. tests/lib/tap.sh

work=$(mktemp -d /tmp/udfb-deploy-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- node and npm ------------------------------------------------------------
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	not_ok "node and npm are installed (they validate the Kubernetes manifests: install Node.js >= 18 and npm)"
	tap_done
	exit 1
fi
ok "node $(node --version) and npm $(npm --version) are installed"

# ---- kubernetes-models ---------------------------------------------------------
# `npm ci` from the lock (npm's cache in ~/.npm); skipped when node_modules
# was installed by this test from the very same package.json and lock (the
# stamp), as in the second, sanitized pass of `make test`.
stamp=tests/k8s/node_modules/.udfb-installed
want_stamp=$(cat tests/k8s/package.json tests/k8s/package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
	ok "tests/k8s/node_modules is installed from the current lock"
else
	(
		cd tests/k8s || exit 1
		if [ -f package-lock.json ]; then
			npm ci --no-audit --no-fund --loglevel=error
		else
			npm install --no-audit --no-fund --loglevel=error
		fi
	) >"$work/npm.log" 2>&1
	npm_rc=$?
	if [ $npm_rc -ne 0 ]; then
		not_ok "npm ci in tests/k8s installs kubernetes-models and js-yaml (exit $npm_rc)"
		tail -n 20 "$work/npm.log" | sed 's/^/#   /'
		tap_done
		exit 1
	fi
	echo "$want_stamp" >"$stamp"
	ok "npm ci in tests/k8s installs kubernetes-models and js-yaml"
fi

# Runs the validator and re-emits its TAP lines as checks of this test.
validate() {
	node tests/k8s/validate.js "$@"
}
validate deploy/k8s/*.yaml >"$work/validate.out" 2>&1
validate_rc=$?
results=0
while IFS= read -r line; do
	case $line in
	"ok "*) ok "k8s: ${line#ok * - }"; results=$((results + 1)) ;;
	"not ok "*) not_ok "k8s: ${line#not ok * - }"; results=$((results + 1)) ;;
	"#"*) echo "$line" ;;
	esac
done <"$work/validate.out"
check_eq "validate.js accepts deploy/k8s/*.yaml (exit status)" "$validate_rc" 0
check "validate.js checked every document and policy (at least 20 results)" test "$results" -ge 20
[ "$validate_rc" -ne 0 ] && [ "$results" -eq 0 ] && sed 's/^/#   /' "$work/validate.out"

# ---- the validator refuses what it must ------------------------------------------
# refuses WHAT FILE SED-SCRIPT EXPECTED-TEXT: a copy of deploy/k8s with FILE
# edited must fail validation, with EXPECTED-TEXT in a "not ok" or its detail.
refuses() {
	local what=$1 file=$2 script=$3 want=$4
	rm -rf "$work/k8s" && cp -r deploy/k8s "$work/k8s"
	sed -i "$script" "$work/k8s/$file"
	if cmp -s "deploy/k8s/$file" "$work/k8s/$file"; then
		not_ok "validate.js refuses $what (the edit changed nothing: fix the test)"
		return
	fi
	validate "$work/k8s/"*.yaml >"$work/bad.out" 2>&1
	local rc=$?
	if [ $rc -eq 1 ] && grep -A 20 '^not ok' "$work/bad.out" | grep -qF -- "$want"; then
		ok "validate.js refuses $what"
	else
		not_ok "validate.js refuses $what (exit $rc, wanted a failure saying: $want)"
		grep -A 3 '^not ok' "$work/bad.out" | head -n 10 | sed 's/^/#   /'
	fi
}
refuses "an unknown kind" 31-service.yaml 's/^kind: Service$/kind: Servcie/' "unknown apiVersion/kind v1/Servcie"
refuses "an unknown apiVersion" 31-service.yaml 's|^apiVersion: policy/v1$|apiVersion: policy/v9|' "unknown apiVersion/kind policy/v9/PodDisruptionBudget"
refuses "a schema violation (a port by name where a number belongs)" 30-deployment.yaml 's/containerPort: 50051/containerPort: "grpc-port"/' "containerPort must be integer"
refuses "a single replica" 30-deployment.yaml 's/replicas: 2/replicas: 1/' "replicas is 1, want >= 2"
refuses "readiness on another path" 30-deployment.yaml 's|path: /readyz|path: /ready|' "readinessProbe: path /ready, want /readyz"
refuses "a writable root filesystem" 30-deployment.yaml '0,/readOnlyRootFilesystem: true/s//readOnlyRootFilesystem: false/' "readOnlyRootFilesystem is not true"
refuses "capabilities not all dropped" 40-prebuild-job.yaml 's/drop: \["ALL"\]/drop: ["NET_RAW"]/' "capabilities.drop does not hold ALL"
refuses "a container that may run as root" 30-deployment.yaml 's/runAsNonRoot: true/runAsNonRoot: false/g' "runAsNonRoot is not true"
refuses "privilege escalation" 30-deployment.yaml '0,/allowPrivilegeEscalation: false/s//allowPrivilegeEscalation: true/' "allowPrivilegeEscalation is not false"
refuses "a Job that is not Indexed" 40-prebuild-job.yaml 's/completionMode: Indexed/completionMode: NonIndexed/' "completionMode is NonIndexed, want Indexed"
refuses "parallelism different from completions" 40-prebuild-job.yaml 's/parallelism: 4/parallelism: 2/' "parallelism 2 differs from completions 4"
refuses "a --shard N that is not completions" 40-prebuild-job.yaml 's|$(JOB_COMPLETION_INDEX)/4|$(JOB_COMPLETION_INDEX)/3|' "--shard is \$(JOB_COMPLETION_INDEX)/3, want \$(JOB_COMPLETION_INDEX)/4"
refuses "a prebuild that pushes elsewhere than the service" 40-prebuild-job.yaml 's|- docker://REGISTRY/udf/images|- docker://REGISTRY/udf/other|' "differs from the service's dest"
refuses "a base image not pinned by digest" 20-config.yaml 's/@sha256:0\{64\}/:3.12/' "is not a registry reference pinned by digest"
refuses "token secrets in the ConfigMap" 20-config.yaml 's/"log_level": "info"/"log_level": "info", "token_secrets": ["0123456789abcdef0123"]/' "token_secrets in a ConfigMap"
refuses "RBAC without networkpolicies" 10-rbac.yaml 's/resources: \["networkpolicies"\]/resources: ["ingresses"]/' "may not create networking.k8s.io/networkpolicies"
refuses "a reference to a missing Secret" 30-deployment.yaml 's/name: udf-builder-tokens/name: udf-builder-tokenz/' "Secret udf-builder/udf-builder-tokenz is not among the documents"
refuses "a namespaced object without its namespace" 31-service.yaml '0,/  namespace: udf-builder/{//d}' "metadata.namespace is missing"

# ---- the configs, through the real binary ----------------------------------------
bin=bin/udf-builder # the release build, what the Dockerfile builds
if [ ! -x "$bin" ]; then
	bin=${UDFB_BIN:-}
	echo "# bin/udf-builder is not built; using $bin (sanitizer runtimes are ignored below)"
fi
check "a udf-builder binary to check against ($bin)" test -x "$bin"
serve_bin=$(dirname "$bin")/udf-builder-serve
check "the service's executable is beside it ($serve_bin)" test -x "$serve_bin"
check "the CLI executable loads neither gRPC nor libmicrohttpd" \
	bash -c '! ldd "$1" | grep -qE "libgrpc|libmicrohttpd|libabsl"' _ "$bin"
check "udf-builder serve runs udf-builder-serve (its --help)" \
	bash -c '"$1" serve --help | grep -q "usage: udf-builder serve"' _ "$bin"

# A ConfigMap key or a Job value, printed with node (js-yaml from tests/k8s).
yaml_get() { # FILE KIND NAME EXPR (JavaScript over `d`, the document)
	NODE_PATH=tests/k8s/node_modules node -e '
		const yaml = require("js-yaml"), fs = require("fs");
		const [file, kind, name, expr] = process.argv.slice(1);
		const d = yaml.loadAll(fs.readFileSync(file, "utf8")).find((x) => x && x.kind === kind && x.metadata.name === name);
		if (!d) process.exit(1);
		process.stdout.write(String(eval(expr)));' "$@"
}

yaml_get deploy/k8s/20-config.yaml ConfigMap udf-builder-config 'd.data["config.json"]' >"$work/config.json"
check "serve accepts the ConfigMap's config.json (every key known, JSON without duplicate keys)" \
	quiet "$bin" serve --config "$work/config.json" --help
check "serve accepts the image's default config (deploy/udf-builder.json)" \
	quiet "$bin" serve --config deploy/udf-builder.json --help
check "the ConfigMap's config sets scheduler kubernetes and deadline_mode accepted" \
	grep -qzE '"scheduler": "kubernetes".*"deadline_mode": "accepted"|"deadline_mode": "accepted".*"scheduler": "kubernetes"' "$work/config.json"

# The Job's example input, sharded as the Job shards it: every line is a
# request, and the N shards' keys together are the whole list once.
yaml_get deploy/k8s/40-prebuild-job.yaml ConfigMap udf-builder-prebuild-input 'd.data["requests.jsonl"]' >"$work/requests.jsonl"
shards=$(yaml_get deploy/k8s/40-prebuild-job.yaml Job udf-builder-prebuild 'd.spec.completions')
if [ -n "${UDFB_TEST_TINY_BASE:-}" ]; then
	tiny=${UDFB_TEST_TINY_BASE#*=}
else
	. tests/lib/base-image.sh
	tiny="oci:$(udfb_tiny_image):tiny"
fi
"$bin" prebuild "$work/requests.jsonl" --base "$tiny" --store "$work/store" --dry-run >"$work/all.keys" 2>"$work/dry.err"
check "prebuild --dry-run reads the Job's example input" test $? -eq 0 -a -s "$work/all.keys"
check "every line of the example input is a valid request" bash -c '! grep -q "^error " "$1"' _ "$work/all.keys"
: >"$work/sharded.keys"
shard_rc=0
for ((i = 0; i < ${shards:-0}; i++)); do
	"$bin" prebuild "$work/requests.jsonl" --base "$tiny" --store "$work/store" --dry-run --shard "$i/$shards" \
		>>"$work/sharded.keys" 2>>"$work/dry.err" || shard_rc=1
done
check_eq "each of the Job's $shards shards runs (an empty shard too)" "$shard_rc" 0
check_eq "the $shards shards cover the input exactly once" \
	"$(cut -d' ' -f1 "$work/sharded.keys" | sort)" "$(cut -d' ' -f1 "$work/all.keys" | sort)"
check_eq "the example input holds requests of two tenants" "$(grep -c '"tenant"' "$work/requests.jsonl")" 2

# ---- the Dockerfile, statically ----------------------------------------------------
df=deploy/Dockerfile
# Instructions one a line: comments dropped, continuation lines joined.
awk '/^[[:space:]]*#/ { next } { if (sub(/\\[[:space:]]*$/, "")) { buf = buf $0 " "; next } print buf $0; buf = "" }' "$df" |
	grep -v '^[[:space:]]*$' >"$work/instructions"
grep -iE '^[[:space:]]*FROM[[:space:]]' "$work/instructions" >"$work/froms"
check_eq "the Dockerfile has two stages" "$(wc -l <"$work/froms")" 2
check "both stages are FROM debian:12*" bash -c '[ "$(grep -cE "^[[:space:]]*FROM[[:space:]]+debian:12([-@:][^[:space:]]*)?([[:space:]]|$)" "$1")" -eq 2 ]' _ "$work/froms"
check "the runtime stage is FROM debian:12-slim" bash -c 'tail -n 1 "$1" | grep -qE "^[[:space:]]*FROM[[:space:]]+debian:12-slim"' _ "$work/froms"
build_stage=$(head -n 1 "$work/froms" | sed -nE 's/.*[[:space:]][Aa][Ss][[:space:]]+([^[:space:]]+).*/\1/p')
awk 'BEGIN { IGNORECASE = 1 } /^[[:space:]]*FROM[[:space:]]/ { n++ } n == 1' "$work/instructions" >"$work/build"
awk 'BEGIN { IGNORECASE = 1 } /^[[:space:]]*FROM[[:space:]]/ { n++ } n == 2' "$work/instructions" >"$work/runtime"
check "the build stage runs deploy/install-deps.sh build and make" \
	bash -c 'grep -qE "^RUN .*deploy/install-deps\.sh build" "$1" && grep -qE "^RUN .*\bmake\b" "$1"' _ "$work/build"
check "the runtime stage copies bin/udf-builder from the build stage (${build_stage:-unnamed})" \
	grep -qE "^COPY[[:space:]]+--from=${build_stage:-0}[[:space:]].*bin/udf-builder[[:space:]]" "$work/runtime"
check "the runtime stage copies bin/udf-builder-serve beside it" \
	grep -qE "^COPY[[:space:]]+--from=${build_stage:-0}[[:space:]].*bin/udf-builder-serve[[:space:]]+/usr/local/bin/" "$work/runtime"
check "the runtime stage installs with --no-install-recommends and drops apt's lists" \
	bash -c 'grep -qE "apt-get install .*--no-install-recommends" "$1" && grep -qF "rm -rf /var/lib/apt/lists" "$1"' _ "$work/runtime"
check "the runtime stage installs ca-certificates" grep -qwF ca-certificates "$work/runtime"

# debian:12-slim is Debian's minbase: the Essential and Priority: required
# packages and what they depend on.  This machine is Debian 12 too, so its
# dpkg database gives that set: what the runtime stage need not install.
base_closure() {
	declare -A installed=() seen=()
	local p queue next deps alt choice name
	while read -r p; do installed[$p]=1; done < <(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }')
	queue=$(dpkg-query -W -f '${db:Status-Abbrev}|${Package}|${Essential}|${Priority}\n' |
		awk -F'|' '$1 ~ /^ii/ && ($3 == "yes" || $4 == "required") { print $2 }')
	for p in $queue; do seen[$p]=1; done
	while [ -n "$queue" ]; do
		next=
		for p in $queue; do
			deps=$(dpkg-query -W -f '${Pre-Depends}, ${Depends}' "$p" 2>/dev/null)
			IFS=',' read -ra alts <<<"$deps"
			for alt in "${alts[@]}"; do
				IFS='|' read -ra choices <<<"$alt"
				for choice in "${choices[@]}"; do
					name=$(sed 's/([^)]*)//; s/:any//; s/[[:space:]]//g' <<<"$choice")
					[ -n "$name" ] || continue
					if [ -n "${installed[$name]:-}" ]; then
						[ -n "${seen[$name]:-}" ] || { seen[$name]=1; next="$next $name"; }
						break
					fi
				done
			done
		done
		queue=$next
	done
	printf '%s\n' "${!seen[@]}" | sort
}
base_closure >"$work/base-packages"
check "the minimal base set is known (libc6 and zlib1g in it)" \
	bash -c 'grep -qx libc6 "$1" && grep -qx zlib1g "$1"' _ "$work/base-packages"

# Each library ldd resolves -> its Debian package (dpkg -S knows the path
# as installed: /lib/... or /usr/lib/... on a merged /usr).
libs_checked=0
: >"$work/needed"
while read -r soname path; do
	case $soname in libasan* | libubsan* | liblsan* | libtsan* | libclang_rt*) continue ;; esac
	pkg=
	for p in "$path" "/usr$path" "$(readlink -f "$path")"; do
		pkg=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$pkg" ] && break
	done
	if [ -z "$pkg" ]; then
		not_ok "the Debian package of $soname ($path) is known to dpkg"
		continue
	fi
	libs_checked=$((libs_checked + 1))
	grep -qx "$pkg" "$work/base-packages" && continue
	echo "$pkg $soname" >>"$work/needed"
done < <({ ldd "$bin" && ldd "$serve_bin"; } | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u)
check "ldd resolves the binary's libraries (${libs_checked} found)" test "$libs_checked" -ge 10
sort -u -k1,1 "$work/needed" >"$work/needed.u"
check "some libraries are outside the base (libgrpc29 among them)" grep -q '^libgrpc29 ' "$work/needed.u"
while read -r pkg soname; do
	check "the runtime stage installs $pkg ($soname)" grep -qw -- "$pkg" "$work/runtime"
done <"$work/needed.u"

user=$(grep -iE '^[[:space:]]*USER[[:space:]]' "$work/runtime" | tail -n 1 | awk '{ print $2 }')
check "the runtime stage ends as a non-root USER (${user:-none})" \
	bash -c 'u=${1%%:*}; [ -n "$u" ] && [ "$u" != root ] && [ "$u" != 0 ]' _ "$user"
check "the runtime stage has an ENTRYPOINT running udf-builder" grep -qE '^ENTRYPOINT[[:space:]]+\[?"?[^ ]*udf-builder' "$work/runtime"
check "its CMD is serve with --config" grep -qE '^CMD[[:space:]].*"serve".*"--config"' "$work/runtime"
check "it exposes the gRPC and admin ports (50051, 9090)" grep -qE '^EXPOSE[[:space:]]+50051[[:space:]]+9090' "$work/runtime"
check "the image's config file exists (deploy/udf-builder.json)" \
	bash -c 'grep -qE "^COPY[[:space:]]+deploy/udf-builder\.json[[:space:]]" "$1" && test -f deploy/udf-builder.json' _ "$work/runtime"
check "deploy/Dockerfile.dockerignore keeps build outputs out of the context" \
	bash -c 'grep -qx "bin/" "$1" && grep -qx "build/" "$1" && grep -qx "tests/k8s/node_modules/" "$1"' _ deploy/Dockerfile.dockerignore
check "the Kubernetes manifests run the image's uid (10001, the Dockerfile's USER)" \
	bash -c '[ "${1%%:*}" = 10001 ] && grep -q "runAsUser: 10001" deploy/k8s/30-deployment.yaml' _ "$user"

tap_done
