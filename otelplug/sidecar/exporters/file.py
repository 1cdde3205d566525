"""file: writes each batch as one OTLP-JSON line (or length-prefixed OTLP
protobuf) to a file, with size-based rotation (the Collector's file
exporter: path, format, rotation.max_megabytes / max_backups)."""
from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass, field
from typing import Literal

from ..component import Factory, Kind
from ..helpers.exporter import Exporter, QueueConfig, RetryConfig


@dataclass
class RotationConfig:
    """``max_megabytes``: start a new file when the current one is this big.

    ``max_backups``: rotated files kept; older ones are deleted.
    """
    max_megabytes: int = 100
    max_backups: int = 100

    def validate(self):
        if self.max_megabytes < 1:
            return [(("max_megabytes",), "must be at least 1")]
        return []


@dataclass
class FileConfig:
    """``path``: the file written.

    ``format``: OTLP-JSON lines, or length-prefixed OTLP protobuf.

    ``append``: add to an existing file instead of truncating it.

    ``rotation``: size-based rotation; none: one file that grows.

    ``sending_queue``: off by default: writes are local and quick.

    ``retry_on_failure``: off by default.
    """
    path: str = ""
    format: Literal["json", "proto"] = "json"
    append: bool = True
    rotation: RotationConfig | None = None
    sending_queue: QueueConfig = field(default_factory=lambda: QueueConfig(enabled=False))
    retry_on_failure: RetryConfig = field(default_factory=lambda: RetryConfig(enabled=False))

    def validate(self):
        return [] if self.path else [(("path",), "must be set")]


class FileExporter(Exporter):
    def __init__(self, settings, config: FileConfig):
        super().__init__(settings, config)
        self.path = config.path
        self._f = None
        self._lock = threading.Lock()

    def claims(self) -> list[str]:
        """What it holds exclusively while running (see Service.claims)."""
        return [f"file {os.path.abspath(self.path)}"]

    def start(self, host) -> None:
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        self._f = open(self.path, "ab" if self.config.append else "wb")
        super().start(host)

    def _rotate(self) -> None:
        rot = self.config.rotation
        self._f.close()
        for i in range(rot.max_backups - 1, 0, -1):
            src = f"{self.path}.{i}"
            if os.path.exists(src):
                os.replace(src, f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._f = open(self.path, "ab")

    def send(self, records, timeout: float) -> None:
        from otelplug.otlp import encode, jsonfmt
        req = encode.request(records)
        if self.config.format == "json":
            blob = jsonfmt.to_json(req).encode() + b"\n"
        else:
            body = req.SerializeToString()
            blob = struct.pack(">I", len(body)) + body
        with self._lock:
            rot = self.config.rotation
            if rot and self._f.tell() + len(blob) > rot.max_megabytes << 20 and self._f.tell() > 0:
                self._rotate()
            self._f.write(blob)
            self._f.flush()

    def shutdown(self, drain_timeout: float = 5.0) -> None:
        super().shutdown(drain_timeout)
        with self._lock:
            if self._f:
                self._f.close()
                self._f = None


factory = Factory("file", Kind.EXPORTER, FileConfig, FileExporter)
