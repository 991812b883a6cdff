"""A repo's Markdown is untrusted input: rendered with markdown-it (CommonMark, raw HTML kept as text is
not enough: a link can still say javascript:), then sanitised by nh3 (Rust's ammonia) to an allow-list
of tags, attributes and URL schemes. No script, no event handler, no javascript: link survives."""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

TAGS = {"h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol",
        "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub"}
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"},
              "ol": {"start"}, "code": {"class"}}
SCHEMES = {"http", "https", "mailto"}

_md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


def render(markdown: str) -> str:
    """Markdown to HTML that is safe to put in a page."""
    return str(nh3.clean(_md.render(markdown), tags=TAGS, attributes=ATTRIBUTES, url_schemes=SCHEMES,
                         link_rel="noopener noreferrer nofollow"))
