"""The operators' side of a site's figures: `GET /metrics` and the request-latency middleware."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from web.keys import FIGURES, METRICS, SERVICE, SETTINGS
from web.metrics import Metrics
from web.peers.status import check_peers  # the check of /api/status: the two never disagree

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
    peers = await check_peers(service.transport.session, settings, service.site)
    figures.peers = {p.site: p.reachable for p in peers}
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics_route(app: web.Application) -> None:
    app.router.add_get("/metrics", serve_metrics)
