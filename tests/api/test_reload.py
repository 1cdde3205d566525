"""The API across a SIGHUP reload: the new graph's api extension takes the
same address once the old one has stopped, and shows the new pipelines."""
from __future__ import annotations

import signal

from tests.sidecar.test_reliability import free_port

from .sidecar import TOKENS, call, config, sidecar, wait_api, wait_for


def test_api_survives_a_reload(tmp_path):
    api, otlp = free_port(), free_port()
    with sidecar(tmp_path, config(api, otlp, "127.0.0.1:1")) as p:
        log = tmp_path / "sidecar.log"
        wait_api(api, p, log)
        before = call(api, "/api/v1/status", TOKENS["reader"])[1]
        assert "logs/findings" in {x["id"] for x in before["pipelines"]}
        cfg = tmp_path / "sidecar.yaml"
        cfg.write_text(cfg.read_text().replace("    logs/findings: {receivers: [semconv_findings], exporters: [otlp]}\n",
                                               "").replace("  semconv_findings: {interval: 300ms}\n", ""))
        p.send_signal(signal.SIGHUP)

        def reloaded():
            code, st = call(api, "/api/v1/status", TOKENS["reader"])
            return code == 200 and "logs/findings" not in {x["id"] for x in st["pipelines"]} \
                and st["health"]["status"] != "starting"
        wait_for(reloaded, "the reloaded graph's status", proc=p, log_path=log)
        assert call(api, "/api/v1/status")[0] == 401          # still authenticating
        assert p.poll() is None
