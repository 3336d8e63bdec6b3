"""Tell a reordering (same list items, sentences or table rows, new order) from a rewording.

A diff sees a reordered list as items deleted in one place and inserted in another; judged one
fragment at a time, those look like topics removed and added, or a period "changed". Before
that, each edit is checked against its block (the paragraph, list or table around it): when
every item it touches on either side is still in the block on the other side, word for word,
nothing was added or taken away and the order alone changed.
"""

from __future__ import annotations

import re
from collections import Counter

from policy_versions.changes import Change

# Item boundaries: sentence ends (";" too, for lists written as one sentence) and line breaks
# before a list item or a table row.
_ITEM_END = re.compile(
    r"(?<=[.!?;])[\"'”’)]*\s+|\n(?=[ \t]*(?:[-*+•][ \t]|\d+[.)][ \t]|[a-z][.)][ \t]|\|))"
)
_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)]|[a-z][.)])\s+", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_TRAILING_JOINER = ("and", "or")
_MAX_BLOCK = 20_000


def _block(text: str, start: int, end: int) -> tuple[int, int]:
    # An edit of whole lines ends on a line break (or, for a point, just after one); the blank
    # line after it still closes the same block ("| row |\n" cut from the end of a table).
    if end > 0 and text[end - 1 : end + 1] == "\n\n":
        end -= 1
        start = min(start, end)
    left = text.rfind("\n\n", 0, start)
    right = text.find("\n\n", end)
    return (0 if left < 0 else left + 2), (len(text) if right < 0 else right)


def _key(item: str) -> str:
    """An item without its list marker, punctuation, case or a trailing "; and"."""
    words = _WORD.findall(_MARKER.sub("", item).lower())
    if len(words) > 1 and words[-1] in _TRAILING_JOINER:
        words.pop()
    return " ".join(words)


def _items(text: str, lo: int, hi: int) -> list[tuple[int, int, str]]:
    out = []
    pos = lo
    for m in _ITEM_END.finditer(text, lo, hi):
        out.append((pos, m.start(), _key(text[pos : m.start()])))
        pos = m.end()
    out.append((pos, hi, _key(text[pos:hi])))
    return [item for item in out if item[2]]


def _touched(items: list[tuple[int, int, str]], start: int, end: int) -> list[str]:
    if start == end:  # a pure insertion point touches the item it falls inside
        return [k for a, b, k in items if a < start < b]
    return [k for a, b, k in items if a < end and b > start]


def is_reordering(ch: Change, old_md: str, new_md: str) -> bool:
    """Whether the edit only moves whole items of its block around, changing none of them."""
    if ch.kind != "modified" or ch.old_start < 0 or ch.new_start < 0:
        return False
    old_end, new_end = ch.old_start + len(ch.deleted), ch.new_start + len(ch.inserted)
    old_lo, old_hi = _block(old_md, ch.old_start, old_end)
    new_lo, new_hi = _block(new_md, ch.new_start, new_end)
    if max(old_hi - old_lo, new_hi - new_lo) > _MAX_BLOCK:
        return False
    old_items, new_items = _items(old_md, old_lo, old_hi), _items(new_md, new_lo, new_hi)
    old_keys, new_keys = [k for *_, k in old_items], [k for *_, k in new_items]
    if old_keys == new_keys or Counter(old_keys) != Counter(new_keys):
        # Same order (so not a reordering), or items added, removed or changed in the block.
        return False
    touched_old = _touched(old_items, ch.old_start, old_end)
    touched_new = _touched(new_items, ch.new_start, new_end)
    return bool(touched_old or touched_new)
