"""The dashboard in a real browser: the local stack, headless Chromium (Debian's, never a
downloaded one) and a guard that fails a page that reaches off 127.0.0.1 or logs an error."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (ROOT / "shared", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from helpers.workflows import workflows_folder as copy_workflows  # noqa: E402
from stepwell.local.stack import LocalStack  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOW_TO_ENABLE = (
    "the dashboard's browser tests need Chromium: apt-get install -y chromium "
    "(and `pip install -e '.[dev]'` for playwright); .ci/run installs it"
)
EXAMPLES = ROOT / "statemachines" / "examples"
ORDER = EXAMPLES / "order-fulfilment.json"
WAIT_MS = 30_000


def screenshot(page: Any, name: str) -> None:
    """With STEPWELL_SCREENSHOTS=1, save the whole page as docs/NAME (the docs' pictures)."""
    if os.environ.get("STEPWELL_SCREENSHOTS"):
        page.screenshot(path=str(ROOT / "docs" / name), full_page=True)


def node(step: str, status: str) -> str:
    """The graph's node of ``step`` once it shows ``status``."""
    return f'svg.graph g.node[data-step="{step}"][data-status="{status}"]'


def workflows_folder(tmp: Path) -> Path:
    """statemachines/ plus the workflows only the browser tests use, and the order an operator
    acts on as YAML, code and a machine (tests/helpers/kinds)."""
    return copy_workflows(tmp, HERE / "workflows", ROOT / "tests" / "helpers" / "kinds")


@contextmanager
def dashboard_stack(folder: Path) -> Iterator[LocalStack]:
    """template.yaml with virtual time that never jumps over an approval (a person decides in
    the browser, as under ``stepwell dev --virtual-time``); schedules off."""
    with LocalStack(
        ROOT,
        virtual_time=True,
        schedules=False,
        hold_waits=True,
        workflows=folder,
    ) as stack:
        yield stack


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Guard:
    """What a page did that it must not: requests off 127.0.0.1, console errors, exceptions."""

    off_host: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refusals: list[int] = field(default_factory=list)
    """Statuses of API refusals a test provokes on purpose (the browser logs each as an error)."""

    def expect(self, status: int) -> None:
        """The page will show an API refusal with ``status``: its console line is no error."""
        self.refusals.append(status)

    def watch(self, page: Any) -> Any:
        def on_request(request: Any) -> None:
            host = urlsplit(request.url).hostname
            if request.url.startswith(("data:", "about:")):
                return
            if host != "127.0.0.1":
                self.off_host.append(request.url)

        page.on("request", on_request)
        page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def check(self) -> None:
        assert self.off_host == [], f"requests off 127.0.0.1: {self.off_host}"
        expected = [
            f"Failed to load resource: the server responded with a status of {status} "
            for status in self.refusals
        ]
        errors = list(self.errors)
        for line in expected:
            found = next((e for e in errors if e.startswith(line)), None)
            assert found is not None, f"the page never showed the refusal {line!r}"
            errors.remove(found)
        assert errors == [], f"errors on the page: {errors}"
