"""The demo's committed event module is what the generator makes of the
project's registry today (regenerate: ``otelplug semconv generate python
semconv -o otelplug/demo/contract_events.py`` from the project root)."""
from __future__ import annotations

from events_testdata import PROJECT_ROOT, generate


def test_demo_event_module_is_up_to_date(tmp_path):
    committed = (PROJECT_ROOT / "otelplug" / "demo" / "contract_events.py").read_bytes()
    assert generate("semconv", tmp_path / "contract_events.py") == committed, (
        "otelplug/demo/contract_events.py is stale: regenerate it with "
        "`otelplug semconv generate python semconv -o otelplug/demo/contract_events.py`")
