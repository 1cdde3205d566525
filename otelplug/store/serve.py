"""Reads and prunes of a DuckDB store held by another process.

The process that writes a DuckDB file (the sidecar) holds an exclusive lock
on it, so it answers for the others: a Unix socket ``<file>.sock`` beside
the store, readable only by its owner, authenticated with the secret in
``<file>.key`` (0600).  Requests name a Store method and its keyword
arguments; the reply is its result or the error's message.

``multiprocessing.connection`` (stdlib) does the framing and the HMAC
challenge, so there is no hand-written protocol here.  Each request runs
on its own DuckDB cursor, a consistent snapshot that does not block the
writer.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
from multiprocessing.connection import Client, Listener

from .base import StoreError
from .queries import QueryError

log = logging.getLogger("otelplug.store")

# what a remote caller may ask for: queries, sizes and pruning
METHODS = ("trace", "spans", "logs", "stats", "count", "prune", "size_bytes", "file_bytes")


def socket_path(store_path: str) -> str:
    return store_path + ".sock"


def key_path(store_path: str) -> str:
    return store_path + ".key"


def _key(store_path: str, create: bool) -> bytes:
    path = key_path(store_path)
    if create and not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    with open(path) as f:
        return f.read().strip().encode()


class StoreServer:
    def __init__(self, store):
        self.store = store
        self.path = socket_path(store.path)
        try:
            os.unlink(self.path)       # left behind by a killed sidecar
        except FileNotFoundError:
            pass
        self._listener = Listener(self.path, family="AF_UNIX", authkey=_key(store.path, True))
        os.chmod(self.path, 0o600)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="store-server", daemon=True)

    def start(self):
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn = self._listener.accept()
            except Exception as exc:    # a failed handshake, or closed on shutdown
                if self._stop.is_set():
                    return
                log.warning("store %s: rejected a client: %s", self.store.url, exc)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="store-client").start()

    def _serve(self, conn):
        with conn:
            try:
                method, kwargs = conn.recv()
                if method not in METHODS:
                    conn.send(("error", "StoreError", f"unknown request {method!r}"))
                    return
                result = getattr(self.store, method)(**kwargs)
                conn.send(("ok", result))
            except (QueryError, StoreError, ValueError) as exc:
                conn.send(("error", type(exc).__name__, str(exc)))
            except (EOFError, OSError):
                pass
            except Exception as exc:
                log.exception("store %s: request failed", self.store.url)
                conn.send(("error", "StoreError", f"{type(exc).__name__}: {exc}"))

    def close(self):
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class RemoteStore:
    """The Store methods of METHODS, answered by the process holding the file."""

    def __init__(self, store_path: str):
        self.path = store_path
        self.url = f"duckdb://{store_path}"
        try:
            self._authkey = _key(store_path, False)
        except OSError as exc:
            raise StoreError(f"store {self.url} is held by another process, and its key "
                             f"{key_path(store_path)} is unreadable: {exc.strerror}") from None

    def _call(self, method, **kwargs):
        try:
            with Client(socket_path(self.path), family="AF_UNIX", authkey=self._authkey) as c:
                c.send((method, kwargs))
                reply = c.recv()
        except (OSError, EOFError) as exc:
            raise StoreError(f"store {self.url} is held by another process that does not answer "
                             f"on {socket_path(self.path)}: {exc}") from None
        if reply[0] == "ok":
            return reply[1]
        _, kind, message = reply
        raise (QueryError if kind == "QueryError" else StoreError)(message)

    def __getattr__(self, name):
        if name in METHODS:
            return lambda **kw: self._call(name, **kw)
        raise AttributeError(name)

    def trace(self, trace_id):
        return self._call("trace", trace_id=trace_id)

    def close(self):
        pass
