"""Interleaved, repeated runs of several cases: the load of a shared machine
changes from one minute to the next, so each round runs every case once,
in a rotated order, and results are compared per round or by medians."""
from __future__ import annotations

from typing import Callable


def interleaved_rounds(cases: list[str], rounds: int, measure: Callable[[str], dict], n: int,
                       unit: str) -> dict[str, list[dict]]:
    """``measure(case)`` -> a run with ``cpu``, ``loop_wall``, ``delivered``,
    ``dropped``; prints one line per run (CPU per ``unit``)."""
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    for rnd in range(rounds):
        order = cases[rnd % len(cases):] + cases[:rnd % len(cases)]   # rotate: spread the noise
        for case in order:
            r = measure(case)
            runs[case].append(r)
            print(f"  round {rnd + 1} {case:8s} cpu/{unit} {r['cpu'] / n * 1e6:7.2f} us  "
                  f"loop {r['loop_wall']:6.2f} s  delivered {r['delivered']:7d}  dropped {r['dropped']:7d}",
                  flush=True)
    return runs


def run_app_process(script: str, case: str, args: list[str], endpoint: str | None, env: dict) -> dict:
    """Run ``script --app case ARGS`` in a fresh process; its last stdout
    line is the JSON result."""
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, script, "--app", case, *args] + (["--endpoint", endpoint] if endpoint else []),
                       env=env, capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(f"{case} app failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
