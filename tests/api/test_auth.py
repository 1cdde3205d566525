"""Bearer tokens and scopes against a real sidecar: 401 without or with an
unknown token, 403 with a token lacking the scope, anonymous public only
when configured, a token read from a file, TLS; and a config naming a bad
token field."""
from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

from tests.sidecar.test_reliability import free_port

from .sidecar import ROOT, TOKENS, call, config, sidecar, wait_api, wait_for

READ_PATHS = ["/api/v1/status", "/api/v1/findings", "/api/v1/series"]


def test_scopes_and_anonymous_public(tmp_path):
    api, otlp = free_port(), free_port()
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKENS["admin"] + "\n")
    cfg = config(api, otlp, "127.0.0.1:1", anonymous_public=False, token_file=str(token_file))
    with sidecar(tmp_path, cfg) as p:
        wait_api(api, p, tmp_path / "sidecar.log")
        # public: anonymous refused here (401), every scope allowed
        code, body = call(api, "/api/v1/public")
        assert code == 401 and "bearer token is required" in body["error"]
        for who in ("pub", "reader", "admin"):
            assert call(api, "/api/v1/public", TOKENS[who])[0] == 200, who
        # read endpoints: 401 without / with an unknown token, 403 for public-only
        for path in READ_PATHS:
            assert call(api, path)[0] == 401
            assert call(api, path, "not-a-token")[0] == 401
            code, body = call(api, path, TOKENS["pub"])
            assert code == 403 and "'pub' lacks the 'read' scope" in body["error"], (path, body)
            assert call(api, path, TOKENS["reader"])[0] == 200
            assert call(api, path, TOKENS["admin"])[0] == 200     # admin implies read
        # admin endpoints: the reader gets 403, the admin (token from a file) 200
        assert call(api, "/api/v1/collect", method="POST")[0] == 401
        assert call(api, "/api/v1/collect", TOKENS["reader"], method="POST")[0] == 403
        assert call(api, "/api/v1/collect", TOKENS["admin"], method="POST")[0] == 200
        # not a bearer scheme
        req = urllib.request.Request(f"http://127.0.0.1:{api}/api/v1/status",
                                     headers={"Authorization": f"Basic {TOKENS['reader']}"})
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("Basic auth accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401 and exc.headers["WWW-Authenticate"] == "Bearer"


def test_anonymous_public_when_configured_and_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    api, otlp = free_port(), free_port()
    cfg = config(api, otlp, "127.0.0.1:1", anonymous_public=True,
                 extra_api=f"    tls: {{cert_file: {cert}, key_file: {key}}}")
    ctx = ssl.create_default_context(cafile=str(cert))
    with sidecar(tmp_path, cfg) as p:
        wait_for(lambda: call(api, "/api/v1/status", TOKENS["reader"], scheme="https", context=ctx)[0] == 200,
                 "the API over TLS", proc=p, log_path=tmp_path / "sidecar.log")
        assert call(api, "/api/v1/public", scheme="https", context=ctx)[0] == 200     # anonymous
        assert call(api, "/api/v1/status", scheme="https", context=ctx)[0] == 401     # still not read
        # plain HTTP on the TLS port gets nothing useful
        try:
            code, _ = call(api, "/api/v1/public")
        except OSError:
            code = None
        assert code != 200


def test_bad_token_config_names_the_field(tmp_path):
    api, otlp = free_port(), free_port()
    cfg = config(api, otlp, "127.0.0.1:1").replace("scopes: [admin]", "scopes: [root]")
    (tmp_path / "c.yaml").write_text(cfg)
    r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "run", "--config", str(tmp_path / "c.yaml")],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), API_ADMIN_TOKEN="x"))
    assert r.returncode != 0
    assert "extensions::api::tokens::2::scopes::0" in r.stderr + r.stdout, r.stderr
    assert "unknown scope 'root'" in r.stderr + r.stdout


def test_port_conflict_names_the_api_and_the_address(tmp_path):
    import socket
    api, otlp = free_port(), free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", api))
        held.listen(1)
        (tmp_path / "c.yaml").write_text(config(api, otlp, "127.0.0.1:1"))
        r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "run", "--config", str(tmp_path / "c.yaml")],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=str(ROOT), API_ADMIN_TOKEN="x"))
    out = r.stderr + r.stdout
    assert r.returncode != 0
    assert "extensions::api" in out and f"127.0.0.1:{api}" in out, out[-2000:]


def test_validate_names_every_api_config_problem(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("""
receivers: {otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}}
exporters: {debug: {}}
extensions:
  api:
    endpoint: localhost
    tokens: [{value: x, file: /y, scopes: [read, root]}]
    tls: {cert_file: a.pem}
service:
  extensions: [api]
  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}
""")
    r = subprocess.run([sys.executable, "-m", "otelplug.cli.main", "validate", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = r.stderr + r.stdout
    assert r.returncode != 0
    for msg in ("extensions::api::tokens::0::value: set exactly one of value or file",
                "extensions::api::tokens::0::scopes::1: unknown scope 'root'",
                "extensions::api::tls::cert_file: cert_file and key_file go together"):
        assert msg in out, out
