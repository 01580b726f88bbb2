"""Fixtures of the browser tests: one local stack and one headless Chromium per module."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest
from browser_helpers import (
    CHROMIUM,
    HOW_TO_ENABLE,
    WAIT_MS,
    Guard,
    chromium,
    dashboard_stack,
    workflows_folder,
)

from stepwell.local.stack import LocalStack

ENABLED = CHROMIUM is not None and importlib.util.find_spec("playwright") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ENABLED:
        return
    skip = pytest.mark.skip(reason=HOW_TO_ENABLE)
    for item in items:
        if "tests/browser" in str(item.path).replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with dashboard_stack(workflows_folder(tmp_path_factory.mktemp("workflows"))) as started:
        yield started


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Guard]]:
    """A page of its own (1400x1000) with its guard."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    guard = Guard()
    guard.watch(page)
    yield page, guard
    context.close()
