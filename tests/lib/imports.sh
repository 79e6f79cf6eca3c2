# Serve the import files of tests/data/requests/*.expect.json over HTTP on
# loopback and rewrite requests to point at it.
#   udfb_imports_start DIR   fills DIR/srv, starts the server, sets IMPORTS_PORT
#   udfb_request NAME OUT    writes the request NAME with IMPORTS_BASE replaced
#   udfb_imports_stop
udfb_imports_start() {
	local dir=$1
	mkdir -p "$dir/srv"
	/usr/bin/python3 - "$dir/srv" tests/data/requests/*.expect.json <<'PY'
import io, json, os, sys, zipfile
root = sys.argv[1]
for path in sys.argv[2:]:
    for name, content in json.load(open(path))["files"].items():
        zipped = name.startswith("zip:")
        name = name[4:] if zipped else name
        dst = os.path.join(root, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if zipped:
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                for member, text in sorted(content.items()):
                    z.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
            open(dst, "wb").write(buf.getvalue())
        else:
            open(dst, "w").write(content)
PY
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
