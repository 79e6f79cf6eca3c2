#!/usr/bin/env bash
# tests/lib/registry.sh: a throwaway OCI registry for tests (Debian's
# docker-registry, distribution 2.8) on 127.0.0.1, plain HTTP, no auth, delete
# enabled, storage in a temp dir. Never uses the packaged /etc/docker/registry
# config (that one listens on all interfaces).
#
#   . tests/lib/registry.sh
#   udfb_registry_start || exit 1
#   trap udfb_registry_stop EXIT
#   skopeo copy --dest-tls-verify=false oci:DIR:TAG "docker://$REGISTRY/udfb/base:TAG"
#
# udfb_registry_start exports:
#   REGISTRY               127.0.0.1:PORT
#   UDFB_REGISTRY_PID      pid of the docker-registry process
#   UDFB_REGISTRY_DIR      temp dir: config.yml, registry.log, data/ (the storage)
#   UDFB_REGISTRY_LOG      $UDFB_REGISTRY_DIR/registry.log
# udfb_registry_stop kills it, waits for it and removes the temp dir (unless
# UDFB_REGISTRY_KEEP=1, then the dir is kept and its path printed to stderr).
# It is idempotent and always returns 0, so it is safe in an EXIT trap.
#
# Both functions run in the caller's shell (they export variables), so they do not
# change shell options; they work with or without set -euo pipefail.
# One registry per shell at a time; start a second one from a subshell.
#
# Settings: UDFB_REGISTRY_TMP (parent of the temp dir, default ${TMPDIR:-/tmp}),
# UDFB_REGISTRY_BIN (default docker-registry), UDFB_REGISTRY_PORT (fixed port
# instead of a random free one), UDFB_REGISTRY_AUTH (YAML of an `auth:`
# section, e.g. htpasswd or token, appended to the config; /v2/ then answers
# 401 and that counts as up), UDFB_REGISTRY_TLS_CERT + UDFB_REGISTRY_TLS_KEY
# (serve https with that certificate).
#
# udfb_registry_kill stops the process but keeps its dir and port;
# udfb_registry_resume starts it again on the same config and storage (for
# tests of a registry that goes away in the middle of a push).

udfb__registry_log() {
	printf 'registry: %s\n' "$*" >&2
}

# Write the config for PORT into DIR/config.yml.
udfb__registry_config() {
	local dir=$1 port=$2 secret
	secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $secret
  headers:
    X-Content-Type-Options: [nosniff]
EOF
	if [ -n "${UDFB_REGISTRY_TLS_CERT:-}" ]; then
		printf '  tls:\n    certificate: %s\n    key: %s\n' "$UDFB_REGISTRY_TLS_CERT" "$UDFB_REGISTRY_TLS_KEY" >>"$dir/config.yml"
	fi
	cat >>"$dir/config.yml" <<EOF
health:
  storagedriver:
    enabled: false
EOF
	if [ -n "${UDFB_REGISTRY_AUTH:-}" ]; then
		printf '%s\n' "$UDFB_REGISTRY_AUTH" >>"$dir/config.yml"
	fi
}

# Wait up to ~10 s for PID to answer /v2/ as a registry on PORT; 0 when it does.
udfb__registry_wait() {
	local dir=$1 port=$2 pid=$3 code _ scheme=http
	[ -n "${UDFB_REGISTRY_TLS_CERT:-}" ] && scheme=https
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			return 1
		fi
		code=$(curl -k -s -o /dev/null -w '%{http_code}' --max-time 1 \
			-D "$dir/v2.headers" "$scheme://127.0.0.1:$port/v2/" 2>/dev/null) || code=000
		# "listening on" is logged once our process has bound the port, so
		# the answer cannot come from some other server on that port.
		if { [ "$code" = 200 ] || [ "$code" = 401 ]; } &&
			grep -q "listening on 127.0.0.1:$port" "$dir/registry.log" &&
			grep -qi '^docker-distribution-api-version: *registry/2.0' "$dir/v2.headers"; then
			rm -f "$dir/v2.headers"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# Is something listening on 127.0.0.1:PORT?
udfb__port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

udfb_registry_start() {
	local bin=${UDFB_REGISTRY_BIN:-docker-registry} dir port pid attempt code _
	if [ -n "${UDFB_REGISTRY_PID:-}" ]; then
		udfb__registry_log "already running (pid $UDFB_REGISTRY_PID, ${REGISTRY:-?})"
		return 1
	fi
	dir=$(mktemp -d "${UDFB_REGISTRY_TMP:-${TMPDIR:-/tmp}}/udfb-registry.XXXXXX") || return 1
	mkdir -p "$dir/data" || return 1
	for attempt in 1 2 3 4 5 6 7 8 9 10; do
		if [ -n "${UDFB_REGISTRY_PORT:-}" ]; then
			port=$UDFB_REGISTRY_PORT
		else
			# Below the kernel's ephemeral range (32768+), so no client socket
			# holds it; retried if taken.
			port=$((20000 + (RANDOM % 12000)))
			if udfb__port_busy "$port"; then continue; fi
		fi
		udfb__registry_config "$dir" "$port" || return 1
		"$bin" serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
		pid=$!
		if udfb__registry_wait "$dir" "$port" "$pid"; then
			export REGISTRY="127.0.0.1:$port"
			export UDFB_REGISTRY_PID=$pid
			export UDFB_REGISTRY_DIR=$dir
			export UDFB_REGISTRY_LOG=$dir/registry.log
			return 0
		fi
		# Did not come up: died (port taken?) or hung. Clean up and retry.
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		udfb__registry_log "attempt $attempt on port $port failed: $(tail -n 3 "$dir/registry.log" 2>/dev/null | tr '\n' ' ')"
		if [ -n "${UDFB_REGISTRY_PORT:-}" ]; then break; fi
	done
	udfb__registry_log "could not start $bin; log kept in $dir/registry.log"
	return 1
}

udfb_registry_kill() {
	local pid=${UDFB_REGISTRY_PID:-}
	[ -n "$pid" ] || return 1
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	return 0
}

udfb_registry_resume() {
	local bin=${UDFB_REGISTRY_BIN:-docker-registry} dir=${UDFB_REGISTRY_DIR:?} port=${REGISTRY##*:}
	# The old log is kept: tests count requests across the restart.
	"$bin" serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
	export UDFB_REGISTRY_PID=$!
	udfb__registry_wait "$dir" "$port" "$UDFB_REGISTRY_PID"
}

udfb_registry_stop() {
	local pid=${UDFB_REGISTRY_PID:-} dir=${UDFB_REGISTRY_DIR:-} _
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [ -n "$dir" ] && [ -d "$dir" ]; then
		if [ "${UDFB_REGISTRY_KEEP:-0}" = 1 ]; then
			udfb__registry_log "kept $dir"
		else
			rm -rf "$dir" || true
		fi
	fi
	unset REGISTRY UDFB_REGISTRY_PID UDFB_REGISTRY_DIR UDFB_REGISTRY_LOG
	return 0
}
