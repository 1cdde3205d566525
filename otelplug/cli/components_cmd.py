"""``otelplug components``: the component types this sidecar build knows,
with their stability and the signals they handle (as ``otelcol components``)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "components", help="list the sidecar's component types, their stability and signals",
        description="List every receiver, processor, exporter, connector and extension type "
                    "of the sidecar, with its stability level and signals.")
    p.set_defaults(func=_run)


def component_rows(registry) -> list[tuple[str, str, str, str]]:
    """(kind, type, stability, signals) per factory, aliases folded in."""
    from otelplug.sidecar.component import Kind

    rows = []
    for kind in Kind:
        for name in registry.types(kind):
            f = registry.get(kind, name)
            if name != f.type:
                continue
            if kind is Kind.CONNECTOR:
                signals = ", ".join(f"{a} -> {b}" for a, b in f.connects)
            elif kind is Kind.EXTENSION:
                signals = "-"
            else:
                signals = ", ".join(f.signals)
            label = f.type + "".join(f" ({a})" for a in f.aliases)
            rows.append((kind.singular, label, f.stability, signals))
    return rows


def _run(args) -> int:
    from otelplug.sidecar.factories import Registry

    reg = Registry.default()
    rows = [("KIND", "TYPE", "STABILITY", "SIGNALS")] + component_rows(reg)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    for (kind, name), why in sorted(reg.unavailable.items(), key=lambda kv: str(kv[0])):
        print(f"{kind.singular} {name}: not available: {why}")
    return 0
