"""uvicorn on its own thread inside the sidecar process.

The socket is bound here, before the thread starts, so a port conflict
fails the extension's start with the address (and the service names the
component), and port 0 gets its real port at once."""
from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn

from ...helpers.http_server import split_endpoint

log = logging.getLogger("otelplug.sidecar")


class ThreadedServer:
    def __init__(self, app, endpoint: str, certfile: str = "", keyfile: str = ""):
        host, port = split_endpoint(endpoint)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted connections
        # only for such sockets; without it a keep-alive response's body
        # waits for the client's delayed ACK of its headers (~40 ms)
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise OSError(f"cannot listen on {endpoint}: {exc.strerror or exc}") from None
        self.sock.listen(128)
        bound = self.sock.getsockname()
        self.address = f"{host}:{bound[1]}" if family == socket.AF_INET else f"[{host}]:{bound[1]}"
        self.scheme = "https" if certfile else "http"
        cfg = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                             ssl_certfile=certfile or None, ssl_keyfile=keyfile or None,
                             timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self._run, name="api-http", daemon=True)

    def _run(self):
        # uvicorn installs signal handlers only on the main thread, so the
        # sidecar keeps its own SIGHUP/SIGTERM handling
        try:
            asyncio.run(self.server.serve(sockets=[self.sock]))
        except Exception:
            log.exception("api: the HTTP server stopped")

    def start(self) -> "ThreadedServer":
        self.thread.start()
        return self

    def shutdown(self):
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()
