"""The web app: Starlette routes over the route table.

Starlette (on uvicorn) rather than a hand-written server: the API needs
request bodies, per-route auth, TLS and static files, which the sidecar's
small GET server (helpers/http_server.py) does not do, and Starlette is
the well-kept core FastAPI itself runs on, without FastAPI's pydantic
models, since our parameter declarations (params.py) also write the
OpenAPI document.  Handlers run in Starlette's thread pool, so a slow
store query never holds up ``/status``."""
from __future__ import annotations

import json
import logging
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route as SRoute
from starlette.staticfiles import StaticFiles

from .auth import AuthError
from .openapi import document
from .params import ParamError, parse_all
from .routes import ROUTES, HttpError

log = logging.getLogger("otelplug.sidecar")
MAX_BODY = 16 * 1024


class _Request:
    """The API object plus who is asking, as handlers see it."""

    def __init__(self, api, principal):
        self._api, self.principal = api, principal

    def __getattr__(self, name):
        return getattr(self._api, name)


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _endpoint(api, route):
    async def handle(request: Request) -> Response:
        try:
            principal = api.auth.check(request.headers.get("authorization"), route.scope)
            params = parse_all(route.params, request.query_params, request.path_params)
            body = None
            if route.method == "POST":
                raw = await request.body()
                if len(raw) > MAX_BODY:
                    raise ParamError(f"request body larger than {MAX_BODY} bytes")
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        raise ParamError(f"request body is not JSON: {exc}") from None
                    if not isinstance(body, dict):
                        raise ParamError("request body must be a JSON object")
            result = await run_in_threadpool(route.handler, _Request(api, principal), params, body)
        except AuthError as exc:
            return _error(exc.status, exc.message)
        except ParamError as exc:
            return _error(400, str(exc))
        except HttpError as exc:
            return _error(exc.status, exc.message)
        except Exception:
            log.exception("api: %s %s failed", request.method, request.url.path)
            return _error(500, "internal error (logged by the sidecar)")
        return JSONResponse(result)
    return handle


def build_app(api) -> Starlette:
    openapi = document()

    async def openapi_json(request):
        return JSONResponse(openapi)

    routes = [SRoute(r.path, _endpoint(api, r), methods=[r.method]) for r in ROUTES]
    routes.append(SRoute("/api/v1/openapi.json", openapi_json, methods=["GET"]))
    static = resources.files("otelplug.sidecar.extensions.api") / "static"
    if static.is_dir():
        routes.append(SRoute("/", lambda request: RedirectResponse("/ui/index.html"), methods=["GET"]))
        routes.append(Mount("/ui", StaticFiles(directory=str(static)), name="ui"))
    return Starlette(routes=routes)
