"""``otelplug components``: every factory of the default registry, with the
stability its factory declares."""
from __future__ import annotations

from otelplug.sidecar.component import STABILITY_LEVELS, Kind
from otelplug.sidecar.factories import Registry

from .helpers import run_cli


def test_components_lists_every_factory_with_its_stability():
    out = run_cli("components", timeout=60)
    assert out.returncode == 0, out.stderr
    rows = {tuple(line.split()[:2]): line.split()[2:]
            for line in out.stdout.splitlines()[1:] if line.strip()}
    reg = Registry.default()
    expected = {(k.singular, reg.get(k, t).type) for k in Kind for t in reg.types(k)}
    assert set(rows) == expected
    for (kind, type_), rest in rows.items():
        f = reg.get(Kind(kind + "s"), type_)
        stability = next(w for w in rest if not w.startswith("("))
        assert stability == f.stability and stability in STABILITY_LEVELS, (kind, type_)
    assert rows[("exporter", "debug")][0] == "development"
    assert rows[("exporter", "otlp_grpc")][:2] == ["(otlp)", "beta"]
