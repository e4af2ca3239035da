"""Debian's Chromium driven by Playwright for the console tests: no browser download, ever.

``chromium()`` launches /usr/bin/chromium (``make services`` installs it: scripts/services.sh) with
the flags a machine without outside network needs. ``Capture`` records what a page exposes — console
messages, page errors, every response and its body, requests to the management API — so tests can
search all of it for planted secrets.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from playwright.sync_api import Browser, Page, Response, sync_playwright

T = TypeVar("T")
CHROMIUM = os.environ.get("SLUICE_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


@contextmanager
def chromium() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):  # fail, never skip: the suite installs it
        raise AssertionError(f"{CHROMIUM} is missing: run `make services` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Capture:
    page: Page
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    responses: list[tuple[str, int, bytes]] = field(default_factory=list)  # url, status, body
    api_calls: list[str] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Read at once: a body is gone after the page navigates (reload, goto).
        self.page.on("requestfinished", lambda request: self._keep(request.response()))
        self.page.on("request", lambda r: self.api_calls.append(f"{r.method} {r.url}")
                     if "/client/v4/" in r.url else None)

    def snapshot_storage(self) -> None:
        """What local and session storage hold now (the console keeps its credentials in the latter)."""
        self.storage.append(self.page.evaluate(
            "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"))

    def _keep(self, response: Response | None) -> None:
        if response is None:
            return
        redirect_or_empty = response.status in (204, 304) or 300 <= response.status < 400
        self.responses.append((response.url, response.status, b"" if redirect_or_empty else response.body()))

    def bodies(self) -> list[tuple[str, bytes]]:
        return [(url, body) for url, _, body in self.responses]

    def everything(self) -> str:
        """Every captured byte as text: responses, console, errors, storage and the page now."""
        parts = [body.decode("utf-8", "replace") for _, body in self.bodies()]
        return "\n".join([*parts, *self.console, *self.errors, *self.storage, self.page.content()])


def off_loop(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Runs a helper that calls asyncio.run (database helpers) in a thread: Playwright's sync API keeps
    an event loop in the test's own thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(func, *args, **kwargs).result()


def open_page(browser: Browser) -> tuple[Any, Capture]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    return context, Capture(page)
