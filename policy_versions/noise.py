"""Label edits that change only presentation: whitespace, formatting, quotes, numbers, dates."""

from __future__ import annotations

import re

from policy_versions.sections import clean_title, title_key

NOISE = ("whitespace", "formatting", "quotes", "renumbering", "date_line")

_QUOTES = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "«": '"',
        "»": '"',
        "′": "'",
        "″": '"',
    }
)
_MD_MARKUP = re.compile(r"[*_`~#>|\\]|^\s*[-+]\s|<br\s*/?>|^\s*-{3,}\s*$", re.MULTILINE)
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•◦▪‣]|\d{1,3}[.)]|[a-z][.)])?\s*$", re.IGNORECASE)
_NUMBER_ONLY = re.compile(r"^\W*(?:\d+(?:\.\d+)*|[ivxlc]{1,6}|[a-z])\W*$", re.IGNORECASE)
_NUMBER_REFERENCE = re.compile(
    r"(?:section|sections|clause|article|paragraph|part|chapter|§|¶)\s*$", re.IGNORECASE
)
# A Markdown table's separator row: "|---|:--:|"; its dash count is layout, not content.
_TABLE_RULE = re.compile(r"^\s*\|?(?:\s*:?-+:?\s*\|)*\s*:?-+:?\s*\|?\s*$")
_DATE_LINE = re.compile(
    r"(?<![A-Za-z0-9])(?:last\s+(?:updated|modified|revised|amended|changed)|effective(?:\s+(?:date|as\s+of|"
    r"from|on))?|updated\s+(?:on|as\s+of)|revision\s+date|version\s+date|date\s+of\s+last|"
    r"dated|in\s+effect\s+(?:as\s+of|from))\b",
    re.IGNORECASE,
)
_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_DATE_TOKEN = re.compile(
    r"^(?:\d{1,4}(?:st|nd|rd|th)?|" + "|".join(_MONTHS) + r"|[\s,./\-–—]|of|the)+$",
    re.IGNORECASE,
)


def squash(text: str) -> str:
    return " ".join(text.split())


def line_at(text: str, start: int, end: int) -> str:
    left = text.rfind("\n", 0, start) + 1
    right = text.find("\n", end)
    return text[left : len(text) if right < 0 else right]


def noise_label(
    deleted: str, inserted: str, old_line: str = "", new_line: str = "", before: str = ""
) -> str | None:
    """Which kind of no-meaning change this is, or None when the words themselves changed.

    :param old_line: the whole old line around the deletion (date line detection)
    :param before: the unchanged text just before the change (renumbering detection)
    """
    if squash(deleted) == squash(inserted):
        return "whitespace"
    if squash(deleted.translate(_QUOTES)) == squash(inserted.translate(_QUOTES)):
        return "quotes"
    stripped_old = squash(_MD_MARKUP.sub(" ", deleted.translate(_QUOTES)))
    stripped_new = squash(_MD_MARKUP.sub(" ", inserted.translate(_QUOTES)))
    if stripped_old == stripped_new:
        return "formatting"
    line_start = before.rsplit("\n", 1)[-1]
    if not line_start.strip() and _LIST_MARKER.match(deleted) and _LIST_MARKER.match(inserted):
        return "formatting"  # "1." -> "-", "-" -> "*": the list is the same list
    if _TABLE_RULE.match(old_line) and _TABLE_RULE.match(new_line):
        # Padding, dashes and alignment colons of a table's separator row are layout: they move
        # text within a column. Only a column added or dropped changes the table.
        if _rule_columns(old_line) == _rule_columns(new_line):
            return "formatting"
    if _NUMBER_ONLY.match(deleted) and _NUMBER_ONLY.match(inserted):
        if not line_start.strip(" \t#*_>-+(") or _NUMBER_REFERENCE.search(before):
            return "renumbering"
    if (
        _DATE_LINE.search(old_line)
        and _DATE_LINE.search(new_line)
        and all(not t.strip() or _DATE_TOKEN.match(t) for t in (deleted, inserted))
    ):
        return "date_line"
    return None


def _rule_columns(line: str) -> int:
    """How many columns a table separator row has."""
    return len(line.strip().strip("|").split("|"))


def heading_noise(old_raw: str, new_raw: str) -> str | None:
    label = noise_label(old_raw, new_raw)
    if label:
        return label
    if title_key(old_raw.strip().lstrip("#")) == title_key(new_raw.strip().lstrip("#")):
        if (
            squash(clean_title(old_raw.strip().strip("#"))).lower()
            == squash(clean_title(new_raw.strip().strip("#"))).lower()
        ):
            return "formatting"  # markup, heading level or capitalisation only
        return "renumbering"
    return None
