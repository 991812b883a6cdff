"""A USAGE.md carrying script tags, event handlers and javascript: links renders harmless."""

from __future__ import annotations

import re

from polise.markdown import render

HOSTILE = """# Usage

<script>alert(document.cookie)</script>
<img src="x.png" onerror="alert(1)">
<a href="javascript:alert(2)">click</a>
[also click](javascript:alert(3))
[data](data:text/html;base64,PHNjcmlwdD4=)
<div onclick="steal()">text</div>
<iframe src="https://evil.example"></iframe>
<svg><script>alert(4)</script></svg>
<a href="JaVaScRiPt:alert(5)">mixed case</a>
<style>body{display:none}</style>

Normal **bold** text, `code`, a [real link](https://apps.example.go.id/help) and a table:

| a | b |
|---|---|
| 1 | 2 |
"""


def test_a_usage_file_with_scripts_handlers_and_javascript_links_renders_harmless() -> None:
    html = render(HOSTILE)
    lowered = html.lower()
    assert "<script" not in lowered and "<iframe" not in lowered and "<style" not in lowered
    assert "<svg" not in lowered and "<div" not in lowered
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", lowered)                # no event handler attribute
    assert not re.search(r"(href|src)\s*=\s*[\"']?\s*(javascript|data|vbscript):", lowered)   # no such link
    assert "<img src=\"x.png\">" in lowered                               # the safe part is kept
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html and "<table>" in html
    assert 'href="https://apps.example.go.id/help"' in html and 'rel="noopener noreferrer nofollow"' in html
