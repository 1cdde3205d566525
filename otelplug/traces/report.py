"""One trace's analysis as text: the span tree with the critical path
marked, then the latency breakdown per service and per operation."""
from __future__ import annotations


from .analysis import TraceAnalysis


def _ms(ns) -> str:
    return f"{int(ns) / 1e6:.3f}"


def trace_report(a: TraceAnalysis) -> str:
    sp = a.spans
    n = len(sp)
    if not n:
        return "(no spans)"
    children: dict[int, list] = {}
    for i, p in enumerate(a.parent.tolist()):
        children.setdefault(p, []).append(i)
    name = lambda i: sp.names[int(sp.name_id[i])]          # noqa: E731
    svc = lambda i: sp.services[int(sp.service_id[i])]       # noqa: E731
    lines = [f"{n} spans, depth {a.max_depth}, {a.error_count} errors, "
             f"{_ms(a.duration)} ms; * marks the critical path", ""]
    rows = [["span", "service", "ms", "self ms", "critical ms"]]
    stack = [(i, 0) for i in sorted(children.get(-1, []), key=lambda i: -int(sp.start[i]))]
    while stack:
        i, depth = stack.pop()
        mark = "*" if a.critical_time[i] > 0 else " "
        err = " !" if sp.status_code[i] == 2 else ""
        rows.append([f"{mark} {'  ' * depth}{name(i)}{err}", svc(i),
                     _ms(sp.end[i] - sp.start[i]), _ms(a.self_time[i]), _ms(a.critical_time[i])])
        for c in sorted(children.get(i, []), key=lambda c: -int(sp.start[c])):
            stack.append((c, depth + 1))
    lines.append(_table(rows))
    for title, b in (("by service", a.by_service), ("by operation", a.by_operation)):
        lines += ["", f"latency {title}:",
                  _table([["", "spans", "total ms", "self ms", "critical ms", "errors"]] +
                         [[r["label"], str(r["count"]), _ms(r["total_ns"]), _ms(r["self_ns"]),
                           _ms(r["critical_ns"]), str(r["errors"])] for r in b.rows()])]
    bad = {k: v for k, v in a.anomalies.as_dict().items() if v}
    if bad:
        lines += ["", "bad input: " + ", ".join(f"{k}={v}" for k, v in bad.items())]
    return "\n".join(lines)


def critical_path_line(a: TraceAnalysis) -> str:
    """``service:name (ms) <- ...`` from the end of the trace back."""
    sp = a.spans
    merged: list[list] = []
    for s, x, y in zip(a.path_span.tolist(), a.path_start.tolist(), a.path_end.tolist()):
        if merged and merged[-1][0] == s:
            merged[-1][1] += y - x
        else:
            merged.append([s, y - x])
    return " <- ".join(f"{sp.services[int(sp.service_id[s])]}:{sp.names[int(sp.name_id[s])]} "
                       f"({_ms(d)} ms)" for s, d in merged)


def _table(rows) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


__all__ = ["critical_path_line", "trace_report"]
