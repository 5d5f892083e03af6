"""The worker's HTTP surface for people and monitoring: the wallboard page and its assets,
the JSON API, the live updates (server-sent events) and the Prometheus metrics.

=======================================  ==================================================
``GET /``                                the wallboard page (``?token=T`` stores the token)
``GET /static/{name}``                   its script and style sheet, shipped in the package
``GET /api/queues``                      every queue's tile (``?tenant=``, ``?sort=worst|name``)
``GET /api/queues/{tenant}/{queue}``     one queue: tile, latest snapshot, today's intervals
``GET /api/events``                      server-sent events: ``snapshot``, then ``update``
``GET /metrics``                         Prometheus text format
=======================================  ==================================================

With a token (``CALLSLO_WEB_TOKEN`` or ``web.token_file``) every path but the static assets
asks for it: ``Authorization: Bearer <token>`` or the cookie the page sets. See
docs/wallboard.md.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from importlib import resources
from typing import Any, Callable

import faust
import orjson
from aiohttp import web as aioweb

from streams.errors import ConfigError
from streams.settings import WebSettings
from streams.web.metrics import CONTENT_TYPE, render
from streams.web.view import WallboardView

__all__ = ["register_views", "check_exposure", "is_loopback", "TOKEN_COOKIE", "STATIC_TYPES"]

TOKEN_COOKIE = "callslo_token"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml"}
#: A comment line keeps idle event streams open through proxies and tells the browser the
#: server is alive.
KEEPALIVE_S = 15.0
#: Changes are gathered for this long before they are pushed: one update per burst.
COALESCE_S = 0.25


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(web: WebSettings) -> None:
    """Refuse to serve queue figures to the network without a token, unless told to."""
    if not is_loopback(web.host) and not web.token and not web.allow_open:
        raise ConfigError(
            f"web.host = {web.host!r} serves the wallboard, API and metrics beyond this machine "
            "without a token: set CALLSLO_WEB_TOKEN (or web.token_file), or set "
            "web.allow_open = true (CALLSLO_WEB_ALLOW_OPEN=true) when the network in front of "
            "the worker is trusted")


def static_files() -> dict[str, tuple[bytes, str]]:
    """The page's assets by name, read once from the package."""
    folder = resources.files("streams.web") / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return files


def _json(value: Any, status: int = 200) -> aioweb.Response:
    return aioweb.Response(body=orjson.dumps(value), status=status,
                           content_type="application/json", headers={"Cache-Control": "no-store"})


def _sse(event: str, data: Any, version: int) -> bytes:
    return b"event: %s\nid: %d\ndata: %s\n\n" % (event.encode(), version, orjson.dumps(data))


def register_views(app: faust.App, web: WebSettings, view: WallboardView,
                   registry: Any, is_closing: Callable[[], bool]) -> None:
    """Add the wallboard's routes to ``app``'s web server."""
    token = web.token.reveal()
    assets = static_files()

    def authorized(request: aioweb.Request) -> bool:
        if not token:
            return True
        given = request.headers.get("Authorization", "")
        if given.startswith("Bearer "):
            return hmac.compare_digest(given[7:].strip().encode(), token.encode())
        cookie = request.cookies.get(TOKEN_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), token.encode())

    def refused() -> aioweb.Response:
        return _json({"error": "unauthorized: send Authorization: Bearer <token>, or open "
                               "the wallboard once as /?token=<token>"}, status=401)

    @app.page("/", name="wallboard")
    class Wallboard(faust.web.View):
        async def get(self, request: aioweb.Request) -> aioweb.StreamResponse:
            given = request.query.get("token")
            if token and given is not None:
                if not hmac.compare_digest(given.encode(), token.encode()):
                    return refused()
                # Keep the token in a cookie and drop it from the address bar.
                response = aioweb.Response(status=302, headers={"Location": "/"})
                response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="Strict",
                                    path="/")
                return response
            if not authorized(request):
                return aioweb.Response(status=401, content_type="text/html", text=(
                    "<!doctype html><title>callslo</title><p>This wallboard needs its token: "
                    "open <code>/?token=&lt;token&gt;</code> once.</p>"))
            body, content_type = assets["index.html"]
            return aioweb.Response(body=body, headers={"Content-Type": content_type,
                                                       "Cache-Control": "no-store"})

    @app.page("/healthz", name="health")
    class Health(faust.web.View):
        """For container health checks: needs no token and tells nothing about the queues."""

        async def get(self, request: aioweb.Request) -> aioweb.Response:
            if is_closing():
                return _json({"status": "stopping"}, status=503)
            return _json({"status": "ok"})

    @app.page("/static/{name}", name="wallboard-static")
    class Static(faust.web.View):
        async def get(self, request: aioweb.Request, name: str) -> aioweb.Response:
            found = assets.get(name)
            if found is None:
                return _json({"error": f"no asset {name!r}"}, status=404)
            return aioweb.Response(body=found[0], headers={"Content-Type": found[1],
                                                           "Cache-Control": "no-cache"})

    @app.page("/api/queues", name="wallboard-queues")
    class Queues(faust.web.View):
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            if not authorized(request):
                return refused()
            sort = request.query.get("sort", "worst")
            if sort not in ("worst", "name"):
                return _json({"error": f"sort must be worst or name, got {sort!r}"}, status=400)
            tenant = request.query.get("tenant") or None
            return _json({"version": view.version, "tenants": view.tenants(),
                          "queues": view.listing(tenant, sort)})

    @app.page("/api/queues/{tenant}/{queue}", name="wallboard-queue")
    class Queue(faust.web.View):
        async def get(self, request: aioweb.Request, tenant: str, queue: str) -> aioweb.Response:
            if not authorized(request):
                return refused()
            detail = view.detail(tenant, queue)
            if detail is None:
                return _json({"error": f"no queue {tenant}/{queue} on the wallboard"}, status=404)
            return _json(detail)

    @app.page("/api/events", name="wallboard-events")
    class Events(faust.web.View):
        async def get(self, request: aioweb.Request) -> aioweb.StreamResponse:
            if not authorized(request):
                return refused()
            tenant = request.query.get("tenant") or None
            response = aioweb.StreamResponse(headers={
                "Content-Type": "text/event-stream", "Cache-Control": "no-store",
                "X-Accel-Buffering": "no"})
            await response.prepare(request)
            version = view.version
            try:
                await response.write(_sse("snapshot", {
                    "version": version, "tenants": view.tenants(),
                    "queues": view.listing(tenant, "name")}, version))
                while not is_closing():
                    if not await view.wait_for_change(version, KEEPALIVE_S):
                        await response.write(b": keepalive\n\n")
                        continue
                    if is_closing():
                        break
                    await asyncio.sleep(COALESCE_S)
                    tiles = [t for t in view.changes_since(version)
                             if tenant is None or t["tenant"] == tenant]
                    version = view.version
                    if tiles:
                        await response.write(_sse("update", {"version": version,
                                                             "tenants": view.tenants(),
                                                             "queues": tiles}, version))
            except (ConnectionResetError, ConnectionError):
                pass  # the browser went away
            return response

    @app.page("/metrics", name="metrics")
    class Metrics(faust.web.View):
        async def get(self, request: aioweb.Request) -> aioweb.Response:
            if not authorized(request):
                return refused()
            return aioweb.Response(body=render(registry), headers={"Content-Type": CONTENT_TYPE})
