"""An ``otelplug`` package for a test interpreter with other compiled
modules than the checkout's: every module links to this checkout's source,
except ``otelplug/_ext``, which holds only the given extension files (none:
a source tree nobody built; a debug build's: that build).  Put the returned
folder first on PYTHONPATH, and run Python with ``-P`` so that the current
folder does not go ahead of it."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tests.requirements import ROOT

PACKAGE = ROOT / "otelplug"


def otelplug_overlay(folder: Path, extensions: Iterable[Path] = ()) -> Path:
    ext = folder / "otelplug" / "_ext"
    ext.mkdir(parents=True)
    for entry in PACKAGE.iterdir():
        if entry.name not in ("_ext", "__pycache__"):
            (folder / "otelplug" / entry.name).symlink_to(entry)
    (ext / "__init__.py").symlink_to(PACKAGE / "_ext" / "__init__.py")
    for so in extensions:
        (ext / so.name).symlink_to(so)
    return folder
