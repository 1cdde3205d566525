"""Keep-alive HTTP(S) connections for exporters, one per sender thread
(``http.client`` connections are not thread-safe), with the Collector's
TLS settings (ca_file, cert_file/key_file, insecure_skip_verify)."""
from __future__ import annotations

import http.client
import ssl
import threading
import urllib.parse


class KeepAliveClient:
    def __init__(self, url: str, tls):
        self.url = urllib.parse.urlsplit(url)
        self.tls = tls
        self._local = threading.local()

    def connection(self, timeout: float):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            u = self.url
            if u.scheme == "https":
                ctx = ssl.create_default_context(cafile=getattr(self.tls, "ca_file", None))
                if getattr(self.tls, "insecure_skip_verify", False):
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                if getattr(self.tls, "cert_file", None):
                    ctx.load_cert_chain(self.tls.cert_file, self.tls.key_file)
                conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout, context=ctx)
            else:
                conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        return conn

    def reset(self) -> None:
        """Forget this thread's connection (after an error)."""
        self._local.conn = None

    def export(self, path: str, body: bytes, headers: dict, timeout: float) -> bytes:
        """POST and return the response body of a 2xx.  Transport failures
        and 429/502/503/504 raise Retryable (honouring Retry-After seconds),
        other statuses Permanent: the OTLP/HTTP rules, which Jaeger's
        collector follows too."""
        from .exporter import Permanent, Retryable
        try:
            conn = self.connection(timeout)
            conn.request("POST", path or "/", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.reset()
            raise Retryable(f"{type(exc).__name__}: {exc}") from None
        if 200 <= resp.status < 300:
            return data
        msg = f"HTTP {resp.status}: {data[:200]!r}"
        if resp.status in RETRYABLE_STATUS:
            ra = resp.getheader("Retry-After")
            raise Retryable(msg, float(ra) if ra and ra.strip().isdigit() else None)
        raise Permanent(msg)


RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
