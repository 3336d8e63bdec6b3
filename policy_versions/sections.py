"""Split a Markdown policy into sections that tile the text, and match sections across versions."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from policy_versions.wordiff import WORDS, Budget

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_OR_QUOTE = re.compile(r"^ {0,3}(?:[-*+>]|\d+[.)])(?:\s|$)")
# Plain-text policies (pasted from a web page) number their headings but carry no markup:
# "2.1 Account Information". Recognised only when the document has no Markdown heading at all,
# because in Markdown the same shape is an ordered-list item.
_NUMBERED = re.compile(r"^ {0,3}((?:\d+\.)*\d+)\.?[ \t]+([A-Z][^\n]{0,78}?)[ \t]*$")
_NUMBER_PREFIX = re.compile(
    r"^\s*(?:(?:section|article|clause|part|chapter|§)\s*)?"
    r"(?:\d+(?:\.\d+)*|[ivxlc]+|[a-z])[.):]?(?=\s)\s*",
    re.IGNORECASE,
)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[*_`~]+|<[^>]+>|\\(?=\S)")


@dataclass(frozen=True)
class Section:
    """One heading and the text under it, up to the next heading of any level.

    `start`..`end` covers the heading line(s) and the body; the sections of a document are
    contiguous, so concatenating them gives the document back (the diff relies on this).
    """

    path: tuple[str, ...]
    level: int
    title: str
    start: int
    body_start: int
    end: int

    def heading(self, text: str) -> str:
        return text[self.start : self.body_start]

    def body(self, text: str) -> str:
        return text[self.body_start : self.end]


def clean_title(raw: str) -> str:
    """The heading as a reader sees it: markup, link targets and trailing colons removed."""
    title = _LINK.sub(r"\1", raw)
    title = _MARKUP.sub("", title)
    return " ".join(title.split()).rstrip(":").strip()


def title_key(title: str) -> str:
    """A comparison key that ignores numbering, case, punctuation and markup."""
    text = clean_title(title)
    text = _NUMBER_PREFIX.sub("", text, count=1)
    text = text.lower().replace("&", " and ")
    return " ".join(re.findall(r"\w+", text))


def _lines(text: str) -> list[tuple[int, str]]:
    out = []
    pos = 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def _front_matter_end(lines: list[tuple[int, str]]) -> int:
    """Index of the first line after a YAML front-matter block, 0 when there is none."""
    if not lines or lines[0][1].strip() != "---":
        return 0
    for i in range(1, min(len(lines), 60)):
        if lines[i][1].strip() in ("---", "..."):
            return i + 1
    return 0


def _headings(text: str) -> list[tuple[int, int, int, str]]:
    """(line start offset, body start offset, level, title) for each heading, in order."""
    lines = _lines(text)
    found: list[tuple[int, int, int, str]] = []
    fence: str | None = None
    first = _front_matter_end(lines)
    prev_blank = True
    for i in range(first, len(lines)):
        pos, line = lines[i]
        fm = _FENCE.match(line)
        if fence is not None:
            if fm and fm.group(1)[0] == fence[0] and len(fm.group(1)) >= len(fence):
                fence = None
            prev_blank = False
            continue
        if fm:
            fence = fm.group(1)
            prev_blank = False
            continue
        end_of_line = min(pos + len(line) + 1, len(text))
        m = _ATX.match(line)
        if m:
            found.append((pos, end_of_line, len(m.group(1)), clean_title(m.group(2) or "")))
        elif (
            _SETEXT.match(line)
            and i > first
            and lines[i - 1][1].strip()
            and not prev_blank
            and not _LIST_OR_QUOTE.match(lines[i - 1][1])
            and not _ATX.match(lines[i - 1][1])
            and (i - 1 == first or not lines[i - 2][1].strip())
            and (not found or found[-1][1] <= lines[i - 1][0])
        ):
            level = 1 if line.strip()[0] == "=" else 2
            found.append((lines[i - 1][0], end_of_line, level, clean_title(lines[i - 1][1])))
        prev_blank = not line.strip()
    if found:
        return found
    for pos, line in lines[first:]:
        m = _NUMBERED.match(line)
        if m and not line.rstrip().endswith((".", ",", ";")) and len(m.group(2).split()) <= 10:
            level = m.group(1).count(".") + 2
            end_of_line = min(pos + len(line) + 1, len(text))
            found.append((pos, end_of_line, level, clean_title(line)))
    return found


def split_sections(text: str) -> list[Section]:
    """Sections in document order; the first is the preamble (path ``()``), possibly empty."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    heads = _headings(text)
    first_start = heads[0][0] if heads else len(text)
    sections.append(Section((), 0, "", 0, 0, first_start))
    for n, (start, body_start, level, title) in enumerate(heads):
        end = heads[n + 1][0] if n + 1 < len(heads) else len(text)
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        path = tuple(t for _, t in stack)
        sections.append(Section(path, level, title, start, body_start, end))
    return sections


# --- matching sections across versions -----------------------------------------------------

# Fuzzy section matching compares every unmatched old section with every unmatched new one;
# past this many pairs (two unrelated 1 MB texts) it is skipped and the result marked approximate.
_MAX_SECTION_PAIRS = 20_000
_SECTION_SIMILARITY = 0.5


def _word_set(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in WORDS.findall(text))


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _unique_index(items: list[int], key: dict[int, str]) -> dict[str, int]:
    seen: dict[str, int] = {}
    dup: set[str] = set()
    for i in items:
        k = key[i]
        if k in seen:
            dup.add(k)
        seen[k] = i
    return {k: i for k, i in seen.items() if k not in dup}


def match_sections(
    old: str, new: str, olds: list[Section], news: list[Section], budget: Budget
) -> dict[int, int]:
    """new index -> old index. Same text first, then same title, then similar content."""
    matched: dict[int, int] = {0: 0}  # the preambles always correspond
    free_old = list(range(1, len(olds)))
    free_new = list(range(1, len(news)))

    def take(keys_old: dict[int, str], keys_new: dict[int, str]) -> None:
        nonlocal free_old, free_new
        by_old = _unique_index(free_old, keys_old)
        by_new = _unique_index(free_new, keys_new)
        for k, j in by_new.items():
            i = by_old.get(k)
            if i is not None and k:
                matched[j] = i
        used_old = set(matched.values())
        free_old = [i for i in free_old if i not in used_old]
        free_new = [j for j in free_new if j not in matched]

    text_old = {i: old[olds[i].start : olds[i].end] for i in free_old}
    text_new = {j: new[news[j].start : news[j].end] for j in free_new}
    take(text_old, text_new)
    path_old = {i: " / ".join(title_key(t) for t in olds[i].path) for i in free_old}
    path_new = {j: " / ".join(title_key(t) for t in news[j].path) for j in free_new}
    take(path_old, path_new)
    take(
        {i: title_key(olds[i].title) for i in free_old},
        {j: title_key(news[j].title) for j in free_new},
    )
    take(
        {i: " ".join(olds[i].body(old).split()) for i in free_old},
        {j: " ".join(news[j].body(new).split()) for j in free_new},
    )
    if not free_old or not free_new:
        return matched
    if len(free_old) * len(free_new) > _MAX_SECTION_PAIRS:
        budget.exhausted = True
        return matched
    words_old = {i: _word_set(olds[i].body(old)) for i in free_old}
    words_new = {j: _word_set(news[j].body(new)) for j in free_new}
    scored = sorted(
        (
            (_similarity(words_old[i], words_new[j]), -abs(i - j), i, j)
            for i in free_old
            for j in free_new
        ),
        reverse=True,
    )
    for score, _, i, j in scored:
        if score < _SECTION_SIMILARITY:
            break
        if j not in matched and i not in matched.values():
            matched[j] = i
    return matched


def stable_old_order(pairs: list[int]) -> set[int]:
    """Old indices in the longest increasing run of the new order: those did not move."""
    # Patience-sorting LIS, O(n log n); everything outside it is reported as moved.
    tails: list[int] = []
    tail_idx: list[int] = []
    prev: list[int] = [-1] * len(pairs)
    for k, v in enumerate(pairs):
        pos = bisect.bisect_left(tails, v)
        if pos == len(tails):
            tails.append(v)
            tail_idx.append(k)
        else:
            tails[pos] = v
            tail_idx[pos] = k
        prev[k] = tail_idx[pos - 1] if pos else -1
    keep: set[int] = set()
    k = tail_idx[-1] if tail_idx else -1
    while k >= 0:
        keep.add(pairs[k])
        k = prev[k]
    return keep
