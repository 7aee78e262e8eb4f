"""Typed keys for what a site's aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

SETTINGS = web.AppKey("settings", object)
SERVICE = web.AppKey("service", object)
SITE = web.AppKey("site", int)
METRICS = web.AppKey("metrics", object)  # web.metrics.Metrics: this site's registry
FIGURES = web.AppKey("figures", object)  # web.metrics.SiteFigures: gauges read when scraped
