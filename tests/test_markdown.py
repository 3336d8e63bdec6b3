"""Markdown rendering is sanitised; the canonical form and its hash are stable."""

from __future__ import annotations

import hashlib
from html.parser import HTMLParser

import pytest

from policy_versions.markdown import canonical, content_hash, render

DANGEROUS = [
    "<script>alert(1)</script>",
    '<iframe src="https://evil.example"></iframe>',
    '<img src="x" onerror="alert(1)">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "[data](data:text/html;base64,PHNjcmlwdD4=)",
    '<div onclick="steal()">x</div>',
    "<svg><script>alert(1)</script></svg>",
]


class _Elements(HTMLParser):
    """The real elements and attributes of a fragment (escaped text is not an element)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("source", DANGEROUS)
def test_render_never_lets_scripts_frames_handlers_or_javascript_urls_through(source):
    parser = _Elements()
    parser.feed(render(f"# Title\n\n{source}\n"))
    tags = {tag for tag, _ in parser.found}
    assert not tags & {"script", "iframe", "img", "svg", "div", "object", "embed"}
    for _, attrs in parser.found:
        assert not [a for a in attrs if a.startswith("on")]
        href = (attrs.get("href") or "").strip().lower()
        assert not href.startswith(("javascript:", "data:", "vbscript:"))


def test_render_keeps_policy_structure_with_linkable_headings():
    html = render(
        "# Privacy\n\n## 1. Data we collect\n\n- name\n- email\n\n"
        "| Data | Kept |\n|:--|--:|\n| logs | 30 days |\n\n[Contact](mailto:dpo@x.example)"
    )
    assert '<h2 id="1-data-we-collect">1. Data we collect</h2>' in html
    assert "<li>email</li>" in html
    assert '<td class="align-right">30 days</td>' in html
    assert 'href="mailto:dpo@x.example"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_canonical_form_ignores_invisible_differences_only():
    a = "Title\r\n\r\nWe collect  \r\nyour e\u0301mail.   \n\n\n"
    b = "Title\n\nWe collect\nyour \u00e9mail.\n"
    assert canonical(a) == canonical(b)
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) == hashlib.sha256(canonical(b).encode()).hexdigest()
    assert content_hash("We sell data.") != content_hash("We do not sell data.")
