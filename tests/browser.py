"""Headless Chromium for the browser tests, driven by Playwright (the ``browser`` fixture in
tests/conftest.py launches it; a test module opens its pages and takes its screenshots with these).

The browser is Debian's Chromium (``apt-get install chromium``; VERIFY_TEST_CHROMIUM names another
binary), never one downloaded by ``playwright install``. Without Playwright or Chromium the browser
tests skip, unless VERIFY_TEST_REQUIRE_BROWSER=1, where they fail. Screenshots of every page go to
VERIFY_TEST_SCREENSHOTS (a directory) when set, else to the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    Browser = Page = expect = sync_playwright = None  # type: ignore[assignment,misc]

__all__ = ["Browser", "Page", "Shots", "chromium", "expect", "new_page"]

REQUIRE_BROWSER = os.environ.get("VERIFY_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM = os.environ.get("VERIFY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _missing(why: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{why}, and VERIFY_TEST_REQUIRE_BROWSER=1")
    pytest.skip(why)


@contextmanager
def chromium() -> Iterator[Browser]:
    """Chromium, launched headless; skips (or fails, see above) where it cannot run."""
    if sync_playwright is None:
        _missing("playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def new_page(browser: Browser, **context_options: Any) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies shared with other tests)."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


class Shots:
    """Numbered full-page screenshots, for a person to look at."""

    def __init__(self, page: Page, directory: Path) -> None:
        self.page, self.directory, self.count = page, directory, 0
        directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def for_test(
        cls, page: Page, tmp_path: Path, request: pytest.FixtureRequest, *under: str
    ) -> Shots:
        """Screenshots of one test, in VERIFY_TEST_SCREENSHOTS/<under...>/<test name>."""
        base = os.environ.get("VERIFY_TEST_SCREENSHOTS")
        directory = Path(base) if base else tmp_path / "screenshots"
        return cls(page, directory.joinpath(*under, request.node.originalname))

    def __call__(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=self.directory / f"{self.count:02d}-{name}.png", full_page=True)
