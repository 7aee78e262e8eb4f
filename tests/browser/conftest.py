"""Fixtures for browser tests: real site processes (tests/e2e/cluster.py) and Debian's Chromium
driven by Playwright. One cluster and one browser serve a module; each person is a browser
context (a separate cookie jar). Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import PROJECT_ROOT, Cluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "browser"
# Sites for the browser tests: a vote long enough for two people to click, 1 MB photos at most.
SETTINGS = {"event": {"voting_period_s": 20, "max_photo_mb": 1}}

_clusters = pytest.StashKey[Cluster]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Attach the tail of every site's log to a failed test's report."""
    report = yield
    cluster = item.session.stash.get(_clusters, None)
    if report.failed and cluster is not None:
        report.sections.append(("site logs", cluster.logs()))
    return report


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, request) -> Iterator[Cluster]:
    """Three sites, started and ready, shared by the tests of a module."""
    made = Cluster(tmp_path_factory.mktemp("browser-cluster"), sites=3, settings_overrides=SETTINGS)
    request.session.stash[_clusters] = made
    try:
        made.start_all()
        yield made
    finally:
        made.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does as root)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as e:
        pytest.fail(f"playwright is not installed ({e}): bash scripts/setup.sh --dev installs "
                    "requirements-dev.txt")

    expect.set_options(timeout=10_000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def person(browser) -> Iterator[Callable[..., Any]]:
    """person(width=1280, height=900, scripts=True) -> a page in a new browser context (its own
    cookies).
    A script error or a refused resource (CSP) on any page fails the test."""
    contexts, problems = [], []

    def make(width: int = 1280, height: int = 900, scripts: bool = True):
        context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=scripts)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on("console", lambda message: problems.append(f"console: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text else None)
        return page

    yield make
    for context in contexts:
        context.close()
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def shot(request) -> Callable[[Any, str], Path]:
    """shot(page, name) saves a full-page screenshot as test-artifacts/browser/<test>-<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
