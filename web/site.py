"""One site: wires store, files, actors, transport and routes; `python -m web.site` runs it.

    python -m web.site --site K --sites N [--settings F] [--base-port P] [--data-dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import ssl
import sys
import time

import aiohttp
import uvloop
from aiohttp import web

from actors.crash import CrashPoints
from actors.registry import Actors
from actors.role_actor import Wiring
from domain.config import SiteConfig, Timing
from eventstore import imaging
from eventstore.blob_sweep import sweep_site
from eventstore.montage import MontageCache
from eventstore.photo_files import PhotoFiles
from eventstore.store import SiteStore
from web import lifecycle
from web.api import setup_api_routes
from web.peers.blob_api import BLOBS, BlobReceiver, setup_blob_routes
from web.peers.blob_shipping import BlobShipper
from web.csrf import csrf_middleware
from web.errors import error_middleware
from web.identity import identity_middleware
from web.images import setup_image_routes
from web.loop_calls import LoopCalls
from web.peers.channel_transport import ChannelTransport
from web.peers.channel_api import setup_channel_routes
from web.peers.internal_api import setup_internal_routes
from web.keys import FIGURES, METRICS, SERVICE, SETTINGS, SITE
from web.montages import Montages
from web.live import setup_live_routes
from web.logs import configure_logging
from web.metrics import Metrics, SiteFigures, watch_collector
from web.metrics_http import metrics_middleware, setup_metrics_route
from web.pages.routes import setup_pages
from web.peers.reachability import Reachability
from web.peers.status import check_peer
from web.peers.transport import Transport
from web.pages.rendering import refused_page
from web.service import SiteService
from web.settings import Settings, load_settings
from web.tls import client_context, server_context
from web.uploading import Uploads
from web.voting import Voting

log = logging.getLogger("site")

CHECKPOINT_EVERY_S = 30.0  # the start-up scan is checkpointed this often: a restart reads the rest
# Any body a route reads whole (JSON, forms). Uploads, site-to-site batches and blobs are read
# as streams with caps of their own (web.uploads, web.peers.internal_api, web.peers.blob_api).
MAX_BODY = 1024 * 1024
# The collector's first generation holds this many new objects before a pass (Python's default,
# 700, is a few hundred microseconds of a site's work): what a transaction makes (messages,
# steps, states, records) mostly dies within it, by reference counting, before any pass, rather
# than being promoted and then traversed by full passes. Measured over a 30 s create load at
# 16 clients: the collector's CPU per site ~1.0 s with the default, ~0.33 s with this
# (benchmarks/README.md, session 10).
GC_YOUNG_OBJECTS = 20000


def site_config(settings: Settings, site: int) -> SiteConfig:
    p = settings.protocol
    timing = Timing(p.prepare_timeout_s, p.resend_base_s, p.resend_max_s, p.in_doubt_s, p.ack_wait_s,
                    p.collect_grace_s)
    return SiteConfig(site, settings.sites, settings.max_contributors, timing)


async def _run_site(app: web.Application):
    """Lifecycle: everything that needs the running loop is made here and undone at the end."""
    settings, site, metrics = app[SETTINGS], app[SITE], app[METRICS]
    loop = asyncio.get_running_loop()
    site_dir = settings.site_dir(site)
    store = await loop.run_in_executor(None, SiteStore, settings.database_url(site), site_dir)
    await loop.run_in_executor(None, store.check_durable)  # no forced writes: refuse to start
    files = PhotoFiles(site_dir)
    service = SiteService(settings, site, loop, store, files,
                          Montages(loop, MontageCache(site_dir / "montages", files), site))
    service.montages.watched = service.subscribers.watching  # built ahead where read live
    transport_kind = ChannelTransport if settings.protocol.peer_channel == "websocket" else Transport
    transport = transport_kind(settings, site, loop, service.dispatch)
    service.reachability = Reachability(
        site, lambda peer: check_peer(transport.session, settings, site, peer), service.reachability_changed)
    transport.heard = service.reachability.heard
    # With [tls], peers are dialled over TLS only and must show a certificate from tls.ca.
    connector = aiohttp.TCPConnector(limit=256, ssl=client_context(settings, site) or True)
    transport.session = aiohttp.ClientSession(connector=connector)
    service.shipper = BlobShipper(settings, site, files, lambda: transport.session)
    app[BLOBS] = BlobReceiver(files, settings, store.health)

    calls = LoopCalls(loop)  # the actors' calls for the loop, one wake-up per burst
    service.call_on_loop = transport.call_on_loop = calls.call

    def schedule(delay: float, callback) -> None:
        calls.call(loop.call_later, delay, callback)

    def on_change(event_id: str, role: str, state, seq: int) -> None:
        service.on_change(event_id, role, state, seq)
        metrics.on_change(event_id, role, state, seq)

    wiring = Wiring(
        config=site_config(settings, site),
        store=store,
        send=transport.send,
        schedule=schedule,
        crash=CrashPoints(settings.crash_at),
        on_change=on_change,
        on_records=metrics.on_records,
        on_alarm=service.on_alarm,
        check_files=service.checked,
    )
    capacity = settings.capacity
    service.actors = Actors(wiring, idle_s=capacity.actor_idle_s, max_running=capacity.max_actors,
                            threads=capacity.actor_threads)
    service.transport = transport
    transport.hand_over = service.hand_over  # a prepare or decision to this site: no loop hop
    service.voting = Voting(service)
    service.uploads = Uploads(service)
    service.montages.arriving = service.uploads.arriving  # a burst's montage waits for it to settle
    app[SERVICE] = service
    app[FIGURES] = SiteFigures(metrics, lambda: len(service.in_doubt), lambda: store.health.failures,
                               store.written)
    metrics.registry.register(app[FIGURES])
    await service.start()
    transport.open_channels()
    checkpoints = asyncio.create_task(_checkpoint_periodically(loop, store))
    sweeps = asyncio.create_task(_sweep_blobs_periodically(loop, store, files, settings.protocol))
    watching = asyncio.create_task(_watch_home_sites(service))
    await loop.run_in_executor(None, lifecycle.record, site_dir, "started")
    log.info("site %d ready at %s", site, settings.site_url(site))
    yield
    checkpoints.cancel()
    sweeps.cancel()
    watching.cancel()
    service.actors.stop_all()
    await transport.close()
    await transport.session.close()
    await loop.run_in_executor(None, store.checkpoint)
    store.close()
    await loop.run_in_executor(None, lifecycle.record, site_dir, "stopped")


async def _freeze_start_up(app: web.Application) -> None:
    """What start-up made and keeps (modules, the scan, the wiring, the image decoders) is left
    out of the collector's full passes from here on: they traverse only what the site makes
    while it serves. In a site's own process only (`main`), not in a test's."""
    imaging.ready_decoders()
    gc.collect()
    gc.freeze()


async def _watch_home_sites(service: SiteService) -> None:
    """While pages are open live, keep checking the home sites of their events, so that a page
    says so when one goes away or comes back (web.peers.reachability)."""
    while True:
        await asyncio.sleep(1.0)
        for event_id in service.subscribers.events():
            state = service.views.get(event_id)
            if state is not None and state.exists:
                service.home_reachable(state)


async def _checkpoint_periodically(loop: asyncio.AbstractEventLoop, store: SiteStore) -> None:
    while True:
        await asyncio.sleep(CHECKPOINT_EVERY_S)
        try:
            await loop.run_in_executor(None, store.checkpoint)
        except Exception:  # the checkpoint is an optimisation: the site runs on without it
            log.exception("the scan checkpoint failed; the next start reads a longer tail")


async def _sweep_blobs_periodically(loop, store: SiteStore, files: PhotoFiles, protocol) -> None:
    """Photo files that no committed or prepared upload names go once past the grace period."""
    while True:
        await asyncio.sleep(protocol.blob_sweep_every_s)
        try:
            await loop.run_in_executor(None, sweep_site, store, files, protocol.blob_grace_s, time.time())
        except Exception:  # the files stay until the next sweep; the site runs on
            log.exception("the sweep of unnamed photo files failed")


def create_app(settings: Settings, site: int) -> web.Application:
    metrics = Metrics()  # this site's own registry: two apps in one process never share figures
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[
            metrics_middleware(metrics),
            error_middleware,
            identity_middleware(settings, site),
            csrf_middleware(settings, refused_page),
        ],
    )
    app[SETTINGS] = settings
    app[SITE] = site
    app[METRICS] = metrics
    app.cleanup_ctx.append(_run_site)
    setup_api_routes(app)
    setup_image_routes(app)
    setup_internal_routes(app)
    setup_channel_routes(app)
    setup_blob_routes(app)
    setup_pages(app)
    setup_live_routes(app)
    setup_metrics_route(app)
    return app


def _peer_urls(raw: str | None) -> tuple[tuple[int, str], ...] | None:
    """SITE_PEER_URLS='{"1": "http://127.0.0.1:19001", ...}': reach those peers there instead."""
    if not raw:
        return None
    return tuple((int(site), str(url)) for site, url in json.loads(raw).items())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run one site of the photo-session service.")
    parser.add_argument("--site", type=int, required=True)
    parser.add_argument("--sites", type=int)
    parser.add_argument("--settings")
    parser.add_argument("--base-port", type=int)
    parser.add_argument("--data-dir")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(
            args.settings,
            site_count=args.sites,
            base_port=args.base_port,
            data_dir=args.data_dir,
            crash_at=os.environ.get("SITE_CRASH_AT") or None,
            peer_urls=_peer_urls(os.environ.get("SITE_PEER_URLS")),
            log_format=os.environ.get("SITE_LOG_FORMAT") or None,
        )
    except (OSError, ValueError) as error:  # a missing file, bad TOML, settings that cannot work
        print(f"site {args.site} cannot start: {error}", file=sys.stderr)
        return 2
    if not 0 <= args.site < settings.site_count:
        parser.error(f"--site must be in 0..{settings.site_count - 1}")
    configure_logging(settings.log_format, args.site, sys.stderr)
    gc.set_threshold(GC_YOUNG_OBJECTS, *gc.get_threshold()[1:])
    watch_collector()  # its CPU in /metrics (photos_gc_cpu_seconds)
    try:
        ssl_context = server_context(settings, args.site)
        client_context(settings, args.site)  # the CA must load too, before the site says ready
    except (OSError, ssl.SSLError) as error:
        files = ", ".join(f"tls.{name} = {settings.tls.path(name, args.site)}"
                          for name in ("cert", "key", "ca"))
        print(f"site {args.site} cannot load its TLS files ({files}): {error}", file=sys.stderr)
        return 2
    app = create_app(settings, args.site)
    app.on_startup.append(_freeze_start_up)  # after the site's own start-up (its cleanup context)
    web.run_app(
        app,
        host=settings.host,
        port=settings.site_port(args.site),
        ssl_context=ssl_context,
        print=None,
        access_log=None,
        loop=uvloop.new_event_loop(),  # a loop in C: less CPU per request and per hand-off
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
