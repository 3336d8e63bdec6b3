"""Canonical form, content hash and sanitised HTML rendering of policy Markdown."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "h1": {"id"},
    "h2": {"id"},
    "h3": {"id"},
    "h4": {"id"},
    "h5": {"id"},
    "h6": {"id"},
    "ol": {"start"},
    "th": set(),
    "td": set(),  # column alignment, as a class: the CSP forbids style=""
}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def canonical(markdown: str) -> str:
    """The form that is stored and hashed: NFC, LF line ends, no trailing spaces, one final LF.

    Two texts that differ only in invisible ways hash the same, so the hash identifies what a
    reader sees. (Trailing-space hard breaks go too; a backslash at the line end still works.)
    """
    text = unicodedata.normalize("NFC", markdown).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip(" \t") for line in text.split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def control_characters(markdown: str) -> list[int]:
    """1-based line numbers that hold control characters (NUL and friends) a policy never needs."""
    return [n for n, line in enumerate(markdown.split("\n"), 1) if _CONTROL.search(line)]


def content_hash(markdown: str) -> str:
    """SHA-256 (hex) of the canonical text, the fingerprint every acceptance points at."""
    return hashlib.sha256(canonical(markdown).encode("utf-8")).hexdigest()


def _slug(text: str, seen: dict[str, int]) -> str:
    base = re.sub(r"[^\w\- ]", "", text.lower(), flags=re.UNICODE).strip().replace(" ", "-")
    base = re.sub(r"-+", "-", base) or "section"
    count = seen.get(base, 0)
    seen[base] = count + 1
    return base if count == 0 else f"{base}-{count}"


def render(markdown: str) -> str:
    """Markdown to HTML that is safe to serve: raw HTML is escaped, then nh3 allow-lists the rest.

    Headings get stable ids so sections can be linked from emails and redlines.
    """
    tokens = _md.parse(markdown)
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            token.attrSet("id", _slug(tokens[i + 1].content, seen))
        elif token.type in ("th_open", "td_open") and token.attrGet("style"):
            align = str(token.attrGet("style")).removeprefix("text-align:")
            token.attrs.pop("style")
            token.attrSet("class", f"align-{align}")
    html = _md.renderer.render(tokens, _md.options, {})
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        allowed_classes={
            "th": {"align-left", "align-center", "align-right"},
            "td": {"align-left", "align-center", "align-right"},
        },
    )
