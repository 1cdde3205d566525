"""Every endpoint validates its parameters: a few hand-picked bad ones get
400 naming the parameter, huge limits are capped, and schemathesis fuzzes
every operation of the OpenAPI document against a real sidecar (bounded
examples): no 5xx, every response conforming to the document."""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.sidecar.test_reliability import free_port

from .sidecar import TOKENS, call, config, send_spans, sidecar, wait_api, wait_for

AUTH = {"Authorization": f"Bearer {TOKENS['admin']}"}


def test_bad_parameters_are_400_naming_them(tmp_path):
    api, otlp = free_port(), free_port()
    with sidecar(tmp_path, config(api, otlp, "127.0.0.1:1")) as p:
        wait_api(api, p, tmp_path / "sidecar.log")
        tok = TOKENS["admin"]
        cases = {
            "/api/v1/findings?limit=abc": "parameter 'limit': must be an integer",
            "/api/v1/findings?limit=0": "parameter 'limit': must be >= 1",
            "/api/v1/findings?level=fatal": "parameter 'level': must be one of",
            "/api/v1/findings?bogus=1": "unknown parameter 'bogus'",
            "/api/v1/findings?limit=1&limit=2": "parameter 'limit' given 2 times",
            "/api/v1/spans?since=yesterday": "parameter 'since': not a time",
            "/api/v1/traces/not-hex": "parameter 'trace_id': must match",
            "/api/v1/public?window=nan": "parameter 'window': must be finite",
            "/api/v1/spans?service=a%27%3B%20DROP%20TABLE%20spans": "parameter 'service': must match",
        }
        for path, message in cases.items():
            code, body = call(api, path, tok)
            assert code == 400 and message in body["error"], (path, code, body)
        code, body = call(api, "/api/v1/alerts/a1/ack", tok, method="POST")
        assert code == 404 and "no alert engine" in body["error"]   # the body was fine
        import urllib.request
        req = urllib.request.Request(f"http://127.0.0.1:{api}/api/v1/collect", method="POST",
                                     data=b"[1,2", headers=AUTH)
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("bad JSON accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400 and b"not JSON" in exc.read()
        # a huge limit is capped, not refused
        code, body = call(api, "/api/v1/findings?limit=99999999999", tok)
        assert code == 200


def test_schemathesis_fuzz(tmp_path):
    """With a store holding spans, so the fuzzed values reach its SQL."""
    api, otlp = free_port(), free_port()
    with sidecar(tmp_path, config(api, otlp, "127.0.0.1:1", store=str(tmp_path / "s.duckdb"))) as p:
        wait_api(api, p, tmp_path / "sidecar.log")
        send_spans(otlp, "checkout", n_ok=5, n_err=1)
        wait_for(lambda: len(call(api, "/api/v1/spans?since=now-1h", TOKENS["reader"])[1]["spans"]) == 6,
                 "spans in the store", proc=p, log_path=tmp_path / "sidecar.log")
        base = f"http://127.0.0.1:{api}"
        schema = schemathesis.openapi.from_url(f"{base}/api/v1/openapi.json")
        ran = 0
        for result in schema.get_all_operations():
            op = result.ok()

            @settings(max_examples=15, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=op.as_strategy())
            def fuzz(case):
                case.call_and_validate(base_url=base, headers=AUTH)

            fuzz()
            ran += 1
        assert ran >= 12
        assert p.poll() is None
