"""docs/components.md and docs/self-metrics.md are generated from the code
(otelplug/sidecar/reference.py) and must match it: regenerate them with
``python -m otelplug.sidecar.reference`` after changing a config dataclass,
a factory or semconv/metrics.yaml."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

from otelplug.sidecar import reference
from otelplug.sidecar.component import Kind
from otelplug.sidecar.factories import Registry

from ..cli.helpers import child_env


def test_reference_pages_are_up_to_date():
    for path, text in reference.pages().items():
        assert path.exists(), f"{path} missing: run python -m otelplug.sidecar.reference"
        assert path.read_text() == text, \
            f"{path} is out of date: run python -m otelplug.sidecar.reference"


def test_every_factory_and_option_is_in_the_component_reference():
    page = reference.components_markdown(Registry.default())
    reg = Registry.default()
    for kind in Kind:
        for name in reg.types(kind):
            f = reg.get(kind, name)
            assert f"### {f.type}\n\nstability: {f.stability}" in page
            for field in dataclasses.fields(f.config):
                if not field.name.startswith("_"):
                    assert f"| `{field.name}` |" in page, (f.type, field.name)


def test_descriptions_come_from_the_code():
    page = reference.components_markdown(Registry.default())
    # a trailing comment on the field's line
    assert "| `priority.attributes[].values` | list | `[]` | empty: the key's presence is " \
        "enough |" in page
    # an entry of the class docstring that starts with ``name``:
    assert "| `registry` | str | `\"\"` | a registry folder (or a manifest / single YAML file)," \
        in page


def test_check_mode_fails_on_a_stale_page(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "semconv").symlink_to(reference.PROJECT_ROOT / "semconv")
    cmd = [sys.executable, "-m", "otelplug.sidecar.reference", "--root", str(tmp_path)]
    stale = subprocess.run([*cmd, "--check"], capture_output=True, text=True, env=child_env())
    assert stale.returncode == 1 and "components.md is out of date" in stale.stderr
    assert subprocess.run(cmd, capture_output=True, env=child_env()).returncode == 0
    fresh = subprocess.run([*cmd, "--check"], capture_output=True, text=True, env=child_env())
    assert fresh.returncode == 0, fresh.stderr


def test_every_option_has_a_description_from_the_code():
    reg = Registry.default()
    missing = set()
    for kind in Kind:
        for name in reg.types(kind):
            f = reg.get(kind, name)
            for option, _type, _default, description in reference.options(f.config):
                if not description:
                    missing.add((f.type, option))
    assert not missing, sorted(missing)
