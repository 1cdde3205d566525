"""Lifecycle of the analytics connector (both signals, one shared core)
and the alerts extension: create, start, one batch each, shutdown; the
batch's ack settles once; what was still open is emitted at shutdown."""
from __future__ import annotations

from otelplug import codec
from otelplug.sidecar.extensions import alerts
from otelplug.sidecar.connectors import analytics
from tests.analytics.conftest import free_port
from tests.sidecar.helpers import Capture, counting_ack, make, records_from_spans, sdk_spans


class Host:
    def __init__(self, **extensions):
        self.extensions = extensions

    def extension(self, name):
        return self.extensions.get(name)


def test_connector_and_extension_lifecycle(tmp_path):
    ext = make(alerts.factory, {"endpoint": f"127.0.0.1:{free_port()}",
                                "state_file": str(tmp_path / "state.json")})
    host = Host(alerts=ext)
    ext.start(host)
    cfg = {"alerts": "alerts", "rules": [{"name": "Any", "count": {"match": {"signal": "traces"}}}]}
    from otelplug.sidecar.config.decode import decode
    from otelplug.sidecar.component import ComponentID, CreateSettings, Kind
    from otelplug.sidecar.telemetry import Telemetry
    config = decode(analytics.factory.config, cfg)      # one config object: one shared core
    tel = Telemetry()
    caps = {s: Capture() for s in ("traces", "logs")}
    conns = {s: analytics.factory.create(CreateSettings(ComponentID("analytics"), Kind.CONNECTOR, s, tel),
                                         config, caps[s]) for s in caps}
    assert conns["traces"].core is conns["logs"].core
    for c in conns.values():
        c.start(host)
    assert [r["name"] for r in ext.engine.rules_status()] == ["Any"]
    ack, settled = counting_ack()
    conns["traces"].consume(records_from_spans(sdk_spans(5), acks=[ack]))
    assert settled == [False]
    for c in conns.values():
        c.shutdown()
    ext.shutdown()
    assert ext.engine.rules_status() == []          # the connector took its rules away
    names = {codec.decode_metric(p).name for rs in caps["traces"].got for p in rs.payloads()}
    assert "analytics.span.count" in names          # the open window, emitted at shutdown
