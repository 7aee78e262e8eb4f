"""Typed keys for what a site's aiohttp application holds."""

from __future__ import annotations

from aiohttp import web

SETTINGS = web.AppKey("settings", object)
SERVICE = web.AppKey("service", object)
SITE = web.AppKey("site", int)
