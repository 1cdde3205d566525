"""The OpenAPI 3.0 document, built from the route table (routes.py)."""
from __future__ import annotations

from .routes import ROUTES

_ERROR = {"description": "error", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}


def document(version: str = "0.1.0") -> dict:
    paths: dict = {}
    for r in ROUTES:
        op = {"summary": r.summary, "operationId": f"{r.method.lower()}_{r.path.strip('/').replace('/', '_')}"
              .replace("{", "").replace("}", ""),
              "parameters": [p.openapi() for p in r.params],
              "responses": {"200": {"description": "ok", "content": {"application/json": {
                  "schema": {"type": "object"}}}},
                  "400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR,
                  "503": {**_ERROR, "description": "the store is unavailable"}},
              "security": [] if r.scope == "public" else [{"bearer": [r.scope]}],
              "x-scope": r.scope}
        if r.scope == "public":
            op["security"] = [{}, {"bearer": ["public"]}]
        if r.body is not None:
            op["requestBody"] = {"required": False, "content": {"application/json": {"schema": r.body}}}
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "otelplug sidecar API", "version": version,
                 "description": "Status, sanitized public view, history and queries of the store, "
                                "semantic-convention findings, alerts."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
