#!/usr/bin/python3
"""A loopback token server for distribution's `auth.token` (the Docker
registry token flow), for tests only.

    token_server.py DIR SERVICE ISSUER USER:PASSWORD REFRESH_TOKEN

DIR holds key.pem and cert.pem (an RSA key and its self-signed certificate;
the registry trusts cert.pem as its `rootcertbundle`).  Prints the port on
the first line of stdout, then serves until killed:

- GET /token?service=S&scope=A&scope=B with Basic USER:PASSWORD grants every
  action asked for; a wrong password is a 401; no credentials get a token
  with no access (the registry then refuses).  Answers {"token", "expires_in"}.
- POST /token (OAuth2 form, grant_type=refresh_token) with REFRESH_TOKEN
  grants the same; answers {"access_token", "expires_in"}.

Tokens are JWTs signed RS256 with `openssl dgst` (no Python crypto package
needed) and carry the certificate in `x5c`, which is how distribution 2.8
finds the key.  Each request appends one line to DIR/requests.log: the
method, whether credentials came, and the scopes (never the credentials).
"""
import base64
import http.server
import json
import os
import subprocess
import sys
import time
import urllib.parse

DIR, SERVICE, ISSUER, USERPASS, REFRESH = sys.argv[1:6]


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cert_der_b64():
    lines = open(os.path.join(DIR, "cert.pem")).read().split("\n")
    return "".join(l for l in lines if l and not l.startswith("-----"))


def sign(data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", os.path.join(DIR, "key.pem")],
                          input=data, capture_output=True, check=True).stdout


def access_for(scopes):
    out = []
    for s in scopes:
        for item in s.split(" "):
            parts = item.split(":")
            if len(parts) >= 3:
                out.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
    return out


def make_token(access):
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "x5c": [cert_der_b64()]}
    claims = {"iss": ISSUER, "sub": "udfb-test", "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
              "iat": now, "jti": "%d-%d" % (now, os.getpid()), "access": access}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(sign(signing_input.encode()))


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def note(self, what, scopes):
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write("%s %s %s\n" % (self.command, what, "|".join(scopes)))

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        scopes = q.get("scope", [])
        auth = self.headers.get("Authorization", "")
        if not auth:
            self.note("anonymous", scopes)
            return self.answer(200, {"token": make_token([]), "expires_in": 300})
        good = auth == "Basic " + base64.b64encode(USERPASS.encode()).decode()
        self.note("basic-ok" if good else "basic-bad", scopes)
        if not good or q.get("service") != [SERVICE]:
            return self.answer(401, {"details": "incorrect username or password"})
        self.answer(200, {"token": make_token(access_for(scopes)), "expires_in": 300})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        scopes = form.get("scope", [])
        good = form.get("grant_type") == ["refresh_token"] and form.get("refresh_token") == [REFRESH]
        self.note("refresh-ok" if good else "refresh-bad", scopes)
        if not good:
            return self.answer(401, {"error": "invalid_grant"})
        self.answer(200, {"access_token": make_token(access_for(scopes)), "expires_in": 300})


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
