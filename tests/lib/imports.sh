# Serve the import files of tests/data/requests/*.expect.json over HTTP on
# loopback and rewrite requests to point at it.
#   udfb_imports_start DIR   fills DIR/srv, starts the server, sets IMPORTS_PORT
#   udfb_request NAME OUT    writes the request NAME with IMPORTS_BASE replaced
#   udfb_imports_stop
udfb_imports_start() {
	local dir=$1
	mkdir -p "$dir/srv"
	/usr/bin/python3 tests/lib/harness.py vector-files "$dir/srv"
	coproc UDFB_HTTP { exec /usr/bin/python3 tests/lib/http_server.py "$dir/srv"; }
	read -r IMPORTS_PORT <&"${UDFB_HTTP[0]}"
	UDFB_HTTP_PID_SAVED=$UDFB_HTTP_PID
	export IMPORTS_PORT
	# The import server is on loopback, which the SSRF guard refuses by default.
	export UDFB_IMPORTS_ALLOW=127.0.0.1
}

udfb_request() {
	sed "s#IMPORTS_BASE#127.0.0.1:$IMPORTS_PORT#g" "tests/data/requests/$1.request.json" >"$2"
}

udfb_imports_stop() {
	[ -n "${UDFB_HTTP_PID_SAVED:-}" ] && kill "$UDFB_HTTP_PID_SAVED" 2>/dev/null
	UDFB_HTTP_PID_SAVED=
	return 0
}
