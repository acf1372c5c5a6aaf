"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by the ``playwright`` package.

`offline_page` opens a page that may reach loopback only (every other request is aborted and
recorded) and records console errors and uncaught page errors. Without chromium or playwright the
tests fail, never skip, with the fix.
"""
from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Seen:
    """What a page did besides rendering."""

    outside: list[str] = field(default_factory=list)   # non-loopback URLs it asked for (aborted)
    errors: list[str] = field(default_factory=list)    # console errors and uncaught exceptions


def chromium_path() -> str:
    """Debian's chromium, or the test fails with how to install it."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is not installed: run `apt-get update && apt-get install -y chromium` "
                    "(make test does this when run as root).")
    return chromium


@contextlib.contextmanager
def offline_page(width: int = 1400, height: int = 1000):
    """Yields ``(page, seen)``: a Chromium page limited to loopback, and what it did (`Seen`)."""
    chromium = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[dev]'.")
    seen = Seen()

    def loopback_only(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            return route.continue_()
        seen.outside.append(route.request.url)
        return route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.route("**/*", loopback_only)
            page.on("console", lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda err: seen.errors.append(str(err)))
            yield page, seen
        finally:
            browser.close()
