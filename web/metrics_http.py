"""The operators' side of a site's figures: `GET /metrics` and the request-latency middleware."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.api import _reachable  # the same check /api/status makes, so the two never disagree
from web.keys import FIGURES, METRICS, SERVICE, SETTINGS
from web.metrics import Metrics

UNMATCHED = "unmatched"  # no route (404, 405): one label, whatever path was asked for


def route_template(request: web.Request) -> str:
    """'/api/events/{event_id}', never the raw path: a label per event would never end."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def metrics_middleware(metrics: Metrics):
    """Outermost, so it sees the status the client gets (after the error middleware's mapping)."""

    @web.middleware
    async def observe(request: web.Request, handler):
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            metrics.observe_request(request.method, route_template(request), status,
                                    time.perf_counter() - started)

    return observe


async def serve_metrics(request: web.Request) -> web.Response:
    service, settings, figures = request.app[SERVICE], request.app[SETTINGS], request.app[FIGURES]
    peers = [s for s in settings.sites if s != service.site]
    session = service.transport.session
    answers = await asyncio.gather(*(_reachable(session, settings.peer_url(s)) for s in peers))
    figures.peers = dict(zip(peers, answers))
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics_route(app: web.Application) -> None:
    app.router.add_get("/metrics", serve_metrics)
