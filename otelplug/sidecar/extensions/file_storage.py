"""file_storage: a directory where components keep state across restarts
(the persistent sending queue), as the Collector's file_storage extension."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..component import Factory, Kind


@dataclass
class FileStorageConfig:
    """``directory``: where persistent queues keep their data.

    ``create_directory``: create it (owner-only) if it does not exist.
    """
    directory: str = "/var/lib/otelplug/file_storage"
    create_directory: bool = True

    def validate(self):
        return [] if self.directory else [(("directory",), "must not be empty")]


class FileStorage:
    def __init__(self, settings, config: FileStorageConfig):
        self.root = Path(config.directory)
        self.config = config
        self.label = f"extensions::{settings.id}"
        self.name = str(settings.id).replace("/", "_")

    def claims(self) -> list[str]:
        """What it holds exclusively while running (see Service.claims)."""
        return [f"directory {self.root.resolve()}"]

    def start(self, host) -> None:
        try:
            if self.config.create_directory:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.root.is_dir():
                raise NotADirectoryError(20, "not a directory")
        except OSError as exc:
            raise RuntimeError(f"{self.label}: cannot use directory {self.root}: "
                               f"{exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise RuntimeError(f"{self.label}: directory {self.root} is not writable")

    def directory_for(self, component: str) -> Path:
        d = self.root / f"{self.name}-{component.replace('/', '_')}"
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return d

    def shutdown(self) -> None:
        pass


factory = Factory("file_storage", Kind.EXTENSION, FileStorageConfig, FileStorage)
