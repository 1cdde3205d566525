"""Schema diff between two registries, per kind of signal.

Categories follow ``weaver registry diff``: an item present only in HEAD is
``added``; only in BASELINE is ``removed``; present in both but newly
deprecated in HEAD is ``renamed`` (with its new name), ``obsoleted`` or
``uncategorized`` according to the deprecation reason.
"""
from __future__ import annotations

from typing import Any

from .model import deprecation_reason
from .registry import ResolvedRegistry
from .signals import KINDS, signal_view

CATEGORIES = ("added", "renamed", "obsoleted", "uncategorized", "removed")


def _deprecated(obj: Any) -> Any:
    return obj.deprecated


def diff_registries(baseline: ResolvedRegistry, head: ResolvedRegistry) -> dict[str, dict[str, list[dict]]]:
    """``{kind: {category: [{"name": ..., ...}]}}`` for every kind."""
    base, new = signal_view(baseline), signal_view(head)
    result: dict[str, dict[str, list[dict]]] = {}
    for kind in KINDS:
        old_items, new_items = base.kind(kind), new.kind(kind)
        changes: dict[str, list[dict]] = {c: [] for c in CATEGORIES}
        for name in sorted(set(new_items) - set(old_items)):
            changes["added"].append({"name": name})
        for name in sorted(set(old_items) - set(new_items)):
            changes["removed"].append({"name": name})
        for name in sorted(set(old_items) & set(new_items)):
            was, now = _deprecated(old_items[name]), _deprecated(new_items[name])
            if was is not None or now is None:
                continue
            reason = deprecation_reason(now) or "uncategorized"
            entry: dict[str, Any] = {"name": name}
            if reason == "renamed":
                entry["new_name"] = now.get("renamed_to")
            if now.get("note"):
                entry["note"] = now["note"]
            changes[reason if reason in CATEGORIES else "uncategorized"].append(entry)
        result[kind] = changes
    return result


def diff_counts(diff: dict[str, dict[str, list[dict]]]) -> dict[str, dict[str, int]]:
    return {kind: {c: len(v) for c, v in cats.items()} for kind, cats in diff.items()}


def diff_to_markdown(diff: dict[str, dict[str, list[dict]]], baseline: str, head: str) -> str:
    lines = [f"# Semantic convention changes: `{baseline}` -> `{head}`", ""]
    for kind, cats in diff.items():
        if not any(cats.values()):
            continue
        lines += [f"## {kind.replace('_', ' ').capitalize()}", ""]
        for cat in CATEGORIES:
            items = cats[cat]
            if not items:
                continue
            lines.append(f"### {cat.capitalize()} ({len(items)})")
            lines.append("")
            for item in items:
                extra = f" -> `{item['new_name']}`" if item.get("new_name") else ""
                lines.append(f"- `{item['name']}`{extra}")
            lines.append("")
    if len(lines) == 2:
        lines.append("No changes.")
    return "\n".join(lines).rstrip() + "\n"


def diff_to_text(diff: dict[str, dict[str, list[dict]]]) -> str:
    lines = []
    for kind, cats in diff.items():
        for cat in CATEGORIES:
            for item in cats[cat]:
                extra = f" -> {item['new_name']}" if item.get("new_name") else ""
                lines.append(f"{kind:<17} {cat:<13} {item['name']}{extra}")
    counts = ", ".join(f"{k}: " + "/".join(f"{c}={len(v)}" for c, v in cats.items() if v)
                       for k, cats in diff.items() if any(cats.values()))
    lines.append(f"summary: {counts or 'no changes'}")
    return "\n".join(lines) + "\n"
