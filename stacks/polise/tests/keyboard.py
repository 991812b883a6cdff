"""Moving through a page by keyboard alone, as the browser tests do."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page


def tab_to(page: Page, selector: str, most: int = 60) -> None:
    """Press Tab until the focused element matches `selector`; fail naming what got focus on the way."""
    passed = []
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement?.matches(s) ?? false", selector):
            return
        passed.append(page.evaluate("(() => { const e = document.activeElement; return e ? "
                                    "e.tagName + (e.id ? '#' + e.id : '') + ' ' + (e.textContent || '').trim()"
                                    ".slice(0, 30) : '' })()"))
    pytest.fail(f"Tab never reached {selector}; focus went through {passed}")


def focused(page: Page, js: str) -> Any:
    return page.evaluate(f"(e => {js})(document.activeElement)")
