"""Section-aware, time-bounded word diff of two Markdown policy versions, and its renderers.

HTML produced here carries no inline style; the page stylesheet is expected to style:

- ``div.redline``                 the whole redline (``redline_html``)
- ``section.redline-section``     one changed section; also ``.redline-added``,
                                  ``.redline-removed``, ``.redline-moved``, ``.redline-renamed``
- ``h3.redline-heading``          the heading path of that section (``›`` between levels)
- ``p.redline-note``              "Moved from …", "Renamed from …", "Approximate diff …" notes
- ``div.redline-body``            the source text with changes; newlines are emitted as ``<br>``
- ``ins`` / ``del``               inserted and deleted text
- ``.noise``                      on an ``ins``/``del`` that only changes whitespace, Markdown
                                  formatting, quotes, numbering or the date line;
                                  ``data-noise`` holds which
- ``span.redline-ws``             a visible marker (``↵`` or ``·``) for a whitespace-only change
- ``span.redline-gap``            unchanged text left out between changes (``[…]``)
- ``table.side-by-side``          ``side_by_side_html``: ``th.side-by-side-section`` rows per
                                  section, ``td.side-by-side-old`` / ``td.side-by-side-new`` cells

For screen readers, the page CSS should announce the edits, e.g.
``ins::before { content: " [inserted: " } ins::after { content: "] " }`` (visually hidden).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any

from diff_match_patch import diff_match_patch

from policy_versions.sections import Section, clean_title, split_sections, title_key

KINDS = ("added", "removed", "modified", "moved", "renamed")
NOISE = ("whitespace", "formatting", "quotes", "renumbering", "date_line")

# Tokens for word mode. CJK ideographs and kana are one token each because those scripts do not
# separate words with spaces; punctuation and Markdown markup are one token per character so that
# "**not**" -> "not" diffs as removed markup, not as a replaced word.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# E-mail addresses and URLs stay whole so that a changed address reads as one replacement.
_WORD_TOKEN = re.compile(
    rf"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|https?://[^\s<>()\[\]]+[^\s<>()\[\].,;:!?'\"]"
    rf"|[{_CJK}]|[^\W_{_CJK}]+|\s+|.",
    re.DOTALL,
)
_LINE_TOKEN = re.compile(r"[^\n]*\n|[^\n]+")
_WORDS = re.compile(r"\w+")
_MAX_TOKENS = 1_000_000  # chr() budget of the token-to-character trick, with a safe margin
# Fuzzy section matching compares every unmatched old section with every unmatched new one;
# past this many pairs (two unrelated 1 MB texts) it is skipped and the result marked approximate.
_MAX_SECTION_PAIRS = 20_000
_SECTION_SIMILARITY = 0.5
_CONTEXT_CHARS = 160


@dataclass(frozen=True)
class Change:
    """One reader-visible change, located by the heading path it sits under.

    `old_start`/`new_start` are the character offsets where the change sits in the old and new
    documents (-1 for a section that exists on one side only), so that callers can read the
    surrounding sentence.
    """

    section: tuple[str, ...]
    old_section: tuple[str, ...] | None
    kind: str
    deleted: str
    inserted: str
    words_deleted: int
    words_inserted: int
    noise: str | None = None
    old_start: int = -1
    new_start: int = -1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["section"] = list(self.section)
        data["old_section"] = None if self.old_section is None else list(self.old_section)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        values = dict(data)
        values["section"] = tuple(values["section"])
        if values.get("old_section") is not None:
            values["old_section"] = tuple(values["old_section"])
        return cls(**values)


@dataclass(frozen=True)
class SectionDiff:
    """The edits inside one section, as ("=", "-" or "+", text) segments, for rendering."""

    path: tuple[str, ...]
    old_path: tuple[str, ...] | None
    kind: str
    old_title: str
    new_title: str
    segments: tuple[tuple[str, str], ...]
    heading_noise: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": list(self.path),
            "old_path": None if self.old_path is None else list(self.old_path),
            "kind": self.kind,
            "old_title": self.old_title,
            "new_title": self.new_title,
            "segments": [list(s) for s in self.segments],
            "heading_noise": self.heading_noise,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SectionDiff:
        return cls(
            path=tuple(data["path"]),
            old_path=None if data["old_path"] is None else tuple(data["old_path"]),
            kind=data["kind"],
            old_title=data["old_title"],
            new_title=data["new_title"],
            segments=tuple((op, text) for op, text in data["segments"]),
            heading_noise=data.get("heading_noise"),
        )


@dataclass(frozen=True)
class DiffResult:
    """What changed between two versions.

    `pieces` is the exact edit script: the new text is the concatenation of its items, each
    either a ``(start, end)`` slice of the old text or a literal inserted string. `changes` and
    `sections` are the human view of the same edits. `approximate` is True when a time budget
    ran out and some hunk is reported as delete-all/insert-all instead of a minimal diff.
    """

    changes: tuple[Change, ...]
    approximate: bool
    sections: tuple[SectionDiff, ...] = ()
    pieces: tuple[tuple[int, int] | str, ...] = ()
    old_sha256: str = ""
    new_sha256: str = ""
    elapsed_ms: float = field(default=0.0, compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "approximate": self.approximate,
            "sections": [s.to_dict() for s in self.sections],
            "pieces": [p if isinstance(p, str) else list(p) for p in self.pieces],
            "old_sha256": self.old_sha256,
            "new_sha256": self.new_sha256,
            "elapsed_ms": self.elapsed_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffResult:
        return cls(
            changes=tuple(Change.from_dict(c) for c in data["changes"]),
            approximate=data["approximate"],
            sections=tuple(SectionDiff.from_dict(s) for s in data["sections"]),
            pieces=tuple(p if isinstance(p, str) else (p[0], p[1]) for p in data["pieces"]),
            old_sha256=data["old_sha256"],
            new_sha256=data["new_sha256"],
            elapsed_ms=data.get("elapsed_ms", 0.0),
        )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def word_count(text: str) -> int:
    return len(_WORDS.findall(text))


# --- the diff engine -----------------------------------------------------------------------


class _Budget:
    """One deadline shared by every diff_main call of a compute(), so the total stays bounded."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + max(seconds, 0.0)
        self.exhausted = False

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()


def _token_diff(
    a: list[str], b: list[str], budget: _Budget, *, semantic: bool = False
) -> list[tuple[str, str]]:
    """Diff two token lists by mapping each distinct token to one character (dmp's line mode).

    With `semantic`, dmp's semantic cleanup runs on the encoded tokens rather than on the text,
    so that edits always start and end on token boundaries (never inside an e-mail address).
    """
    table: dict[str, int] = {}
    tokens: list[str] = []

    def encode(seq: list[str]) -> str:
        out = []
        for tok in seq:
            code = table.get(tok)
            if code is None:
                code = table[tok] = len(tokens)
                tokens.append(tok)
            out.append(chr(code))
        return "".join(out)

    remaining = budget.remaining()
    if remaining <= 0.001 or len(set(a)) + len(set(b)) > _MAX_TOKENS:
        budget.exhausted = True
        return _replace("".join(a), "".join(b))
    ca, cb = encode(a), encode(b)
    dmp = diff_match_patch()
    # Diff_Timeout is the rest of the whole compute() budget, never dmp's 1 s default: on expiry
    # dmp silently returns delete-all/insert-all for the unfinished part, so we must know when it
    # may have happened (see field notes, section 4) and flag the result approximate.
    dmp.Diff_Timeout = remaining
    started = time.perf_counter()
    diffs = dmp.diff_main(ca, cb, False)
    if time.perf_counter() - started >= remaining * 0.95:
        budget.exhausted = True
    if semantic and len(diffs) > 2:
        dmp.diff_cleanupSemantic(diffs)
    ops = {0: "=", -1: "-", 1: "+"}
    return [(ops[op], "".join(tokens[ord(ch)] for ch in chars)) for op, chars in diffs]


def _replace(a: str, b: str) -> list[tuple[str, str]]:
    return [seg for seg in (("-", a), ("+", b)) if seg[1]]


def _merge(segments: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join neighbours with the same op and put deletions before insertions inside a run."""
    out: list[tuple[str, str]] = []
    run: dict[str, list[str]] = {"-": [], "+": []}

    def flush() -> None:
        for op in ("-", "+"):
            if run[op]:
                out.append((op, "".join(run[op])))
                run[op] = []

    for op, text in segments:
        if not text:
            continue
        if op == "=":
            flush()
            if out and out[-1][0] == "=":
                out[-1] = ("=", out[-1][1] + text)
            else:
                out.append(("=", text))
        else:
            run[op].append(text)
    flush()
    return out


def _word_diff(a: str, b: str, budget: _Budget) -> list[tuple[str, str]]:
    return _token_diff(_WORD_TOKEN.findall(a), _WORD_TOKEN.findall(b), budget, semantic=True)


def diff_text(a: str, b: str, budget: _Budget) -> list[tuple[str, str]]:
    """Lines first, then words inside each changed run of lines only."""
    if a == b:
        return [("=", a)] if a else []
    if not a or not b:
        return _replace(a, b)
    lines = _token_diff(_LINE_TOKEN.findall(a), _LINE_TOKEN.findall(b), budget)
    out: list[tuple[str, str]] = []
    pending = {"-": [], "+": []}

    def flush() -> None:
        old, new = "".join(pending["-"]), "".join(pending["+"])
        pending["-"], pending["+"] = [], []
        if old and new:
            out.extend(_word_diff(old, new, budget))
        else:
            out.extend(_replace(old, new))

    for op, text in lines:
        if op == "=":
            flush()
            out.append((op, text))
        else:
            pending[op].append(text)
    flush()
    return _merge(out)


# --- section matching ----------------------------------------------------------------------


def _word_set(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORDS.findall(text))


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


def _match_sections(
    old: str, new: str, olds: list[Section], news: list[Section], budget: _Budget
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


def _stable_old_order(pairs: list[int]) -> set[int]:
    """Old indices in the longest increasing run of the new order: those did not move."""
    # Patience-sorting LIS, O(n log n); everything outside it is reported as moved.
    import bisect

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


# --- noise -------------------------------------------------------------------------------------

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


def _squash(text: str) -> str:
    return " ".join(text.split())


def _line_at(text: str, start: int, end: int) -> str:
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
    if _squash(deleted) == _squash(inserted):
        return "whitespace"
    if _squash(deleted.translate(_QUOTES)) == _squash(inserted.translate(_QUOTES)):
        return "quotes"
    stripped_old = _squash(_MD_MARKUP.sub(" ", deleted.translate(_QUOTES)))
    stripped_new = _squash(_MD_MARKUP.sub(" ", inserted.translate(_QUOTES)))
    if stripped_old == stripped_new:
        return "formatting"
    line_start = before.rsplit("\n", 1)[-1]
    if not line_start.strip() and _LIST_MARKER.match(deleted) and _LIST_MARKER.match(inserted):
        return "formatting"  # "1." -> "-", "-" -> "*": the list is the same list
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


def _heading_noise(old_raw: str, new_raw: str) -> str | None:
    label = noise_label(old_raw, new_raw)
    if label:
        return label
    if title_key(old_raw.strip().lstrip("#")) == title_key(new_raw.strip().lstrip("#")):
        if (
            _squash(clean_title(old_raw.strip().strip("#"))).lower()
            == _squash(clean_title(new_raw.strip().strip("#"))).lower()
        ):
            return "formatting"  # markup, heading level or capitalisation only
        return "renumbering"
    return None


# --- building the result -------------------------------------------------------------------


class _Builder:
    def __init__(self, old: str, new: str) -> None:
        self.old = old
        self.new = new
        self.pieces: list[tuple[int, int] | str] = []
        self.changes: list[Change] = []

    def copy(self, start: int, end: int) -> None:
        if end <= start:
            return
        last = self.pieces[-1] if self.pieces else None
        if isinstance(last, tuple) and last[1] == start:
            self.pieces[-1] = (last[0], end)
        else:
            self.pieces.append((start, end))

    def literal(self, text: str) -> None:
        if not text:
            return
        if self.pieces and isinstance(self.pieces[-1], str):
            self.pieces[-1] = self.pieces[-1] + text
        else:
            self.pieces.append(text)

    def replay(self, segments: list[tuple[str, str]], old_pos: int) -> None:
        for op, text in segments:
            if op == "=":
                self.copy(old_pos, old_pos + len(text))
                old_pos += len(text)
            elif op == "-":
                old_pos += len(text)
            else:
                self.literal(text)

    def body_changes(
        self,
        segments: list[tuple[str, str]],
        old_pos: int,
        new_pos: int,
        path: tuple[str, ...],
        old_path: tuple[str, ...],
    ) -> None:
        """One Change per run of edits between unchanged stretches."""
        k = 0
        while k < len(segments):
            op, text = segments[k]
            if op == "=":
                old_pos += len(text)
                new_pos += len(text)
                k += 1
                continue
            deleted = inserted = ""
            while k < len(segments) and segments[k][0] != "=":
                if segments[k][0] == "-":
                    deleted += segments[k][1]
                else:
                    inserted += segments[k][1]
                k += 1
            old_line = _line_at(self.old, old_pos, old_pos + len(deleted))
            new_line = _line_at(self.new, new_pos, new_pos + len(inserted))
            before = self.old[max(0, old_pos - 40) : old_pos]
            self.changes.append(
                Change(
                    section=path,
                    old_section=old_path,
                    kind="modified",
                    deleted=deleted,
                    inserted=inserted,
                    words_deleted=word_count(deleted),
                    words_inserted=word_count(inserted),
                    noise=noise_label(deleted, inserted, old_line, new_line, before),
                    old_start=old_pos,
                    new_start=new_pos,
                )
            )
            old_pos += len(deleted)
            new_pos += len(inserted)


def _norm_passage(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _pair_moves(changes: list[Change]) -> list[Change]:
    """Report a passage deleted in one place and inserted verbatim in another as one move."""
    deletions: dict[str, list[int]] = {}
    for n, ch in enumerate(changes):
        if (
            ch.kind == "modified"
            and ch.deleted
            and not ch.inserted.strip()
            and ch.words_deleted >= 4
        ):
            deletions.setdefault(_norm_passage(ch.deleted), []).append(n)
    if not deletions:
        return changes
    replaced: dict[int, Change | None] = {}
    for n, ch in enumerate(changes):
        if ch.kind != "modified" or not ch.inserted or ch.deleted.strip() or ch.words_inserted < 4:
            continue
        candidates = deletions.get(_norm_passage(ch.inserted))
        if not candidates:
            continue
        d = candidates.pop(0)
        gone = changes[d]
        replaced[d] = None
        replaced[n] = Change(
            section=ch.section,
            old_section=gone.old_section,
            kind="moved",
            deleted=gone.deleted,
            inserted=ch.inserted,
            words_deleted=gone.words_deleted,
            words_inserted=ch.words_inserted,
            noise=None,
            old_start=gone.old_start,
            new_start=ch.new_start,
        )
    out: list[Change] = []
    for n, ch in enumerate(changes):
        if n in replaced:
            if replaced[n] is not None:
                out.append(replaced[n])
        else:
            out.append(ch)
    return out


def compute(old_md: str, new_md: str, *, timeout: float = 0.5) -> DiffResult:
    """Diff two versions section by section; the dmp work shares one `timeout` budget (seconds).

    Sections are matched across versions by text, then heading, then content similarity, so a
    moved or renamed section is reported as such rather than as a deletion plus an insertion.
    """
    started = time.perf_counter()
    old_sha, new_sha = _sha(old_md), _sha(new_md)
    if old_md == new_md:
        pieces: tuple[tuple[int, int] | str, ...] = ((0, len(old_md)),) if old_md else ()
        return DiffResult((), False, (), pieces, old_sha, new_sha, 0.0)
    budget = _Budget(timeout)
    olds, news = split_sections(old_md), split_sections(new_md)
    matched = _match_sections(old_md, new_md, olds, news, budget)
    old_to_new = {i: j for j, i in matched.items()}
    stable = _stable_old_order([matched[j] for j in range(len(news)) if j in matched])
    b = _Builder(old_md, new_md)
    rendered: list[tuple[float, SectionDiff]] = []
    for j, ns in enumerate(news):
        new_text = new_md[ns.start : ns.end]
        i = matched.get(j)
        if i is None:
            b.literal(new_text)
            b.changes.append(
                Change(
                    ns.path,
                    None,
                    "added",
                    "",
                    new_text,
                    0,
                    word_count(new_text),
                    None,
                    -1,
                    ns.start,
                )
            )
            rendered.append(
                (j, SectionDiff(ns.path, None, "added", "", ns.title, (("+", new_text),)))
            )
            continue
        os_ = olds[i]
        head_ops = diff_text(os_.heading(old_md), ns.heading(new_md), budget)
        body_ops = diff_text(os_.body(old_md), ns.body(new_md), budget)
        b.replay(head_ops, os_.start)
        b.replay(body_ops, os_.body_start)
        kinds = []
        noise: str | None = None
        if i not in stable:
            kinds.append("moved")
            b.changes.append(
                Change(ns.path, os_.path, "moved", "", "", 0, 0, None, os_.start, ns.start)
            )
        if any(op != "=" for op, _ in head_ops):
            old_raw, new_raw = os_.heading(old_md), ns.heading(new_md)
            noise = _heading_noise(old_raw, new_raw)
            kind = "modified" if noise else "renamed"
            if kind == "renamed":
                kinds.append("renamed")
            b.changes.append(
                Change(
                    ns.path,
                    os_.path,
                    kind,
                    os_.title,
                    ns.title,
                    word_count(os_.title),
                    word_count(ns.title),
                    noise,
                    os_.start,
                    ns.start,
                )
            )
        if any(op != "=" for op, _ in body_ops):
            b.body_changes(body_ops, os_.body_start, ns.body_start, ns.path, os_.path)
        if kinds or any(op != "=" for op, _ in body_ops) or any(op != "=" for op, _ in head_ops):
            rendered.append(
                (
                    j,
                    SectionDiff(
                        ns.path,
                        os_.path,
                        kinds[0] if kinds else "modified",
                        os_.title,
                        ns.title,
                        tuple(body_ops),
                        noise,
                    ),
                )
            )
    anchor = -1.0  # a removed section is shown after the new place of its old predecessor
    for i, os_ in enumerate(olds):
        if i in old_to_new:
            anchor = float(old_to_new[i])
            continue
        old_text = old_md[os_.start : os_.end]
        if not old_text:
            continue
        b.changes.append(
            Change(
                os_.path,
                os_.path,
                "removed",
                old_text,
                "",
                word_count(old_text),
                0,
                None,
                os_.start,
                -1,
            )
        )
        anchor += 0.001
        rendered.append(
            (anchor, SectionDiff(os_.path, os_.path, "removed", os_.title, "", (("-", old_text),)))
        )
    changes = _pair_moves(b.changes)
    result = DiffResult(
        changes=tuple(changes),
        approximate=budget.exhausted,
        sections=tuple(sd for _, sd in sorted(rendered, key=lambda r: r[0])),
        pieces=tuple(b.pieces),
        old_sha256=old_sha,
        new_sha256=new_sha,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )
    return result


def _assemble(old_md: str, pieces: tuple[tuple[int, int] | str, ...]) -> str:
    return "".join(p if isinstance(p, str) else old_md[p[0] : p[1]] for p in pieces)


def apply(old_md: str, result: DiffResult) -> str:
    """Replay `result` on the old text; gives exactly the new text it was computed against."""
    if result.old_sha256 and _sha(old_md) != result.old_sha256:
        raise ValueError("this diff was computed against a different old text")
    return _assemble(old_md, result.pieces)


# --- renderers -----------------------------------------------------------------------------

_SEP = " › "


def _path_label(path: tuple[str, ...]) -> str:
    return _SEP.join(path) if path else "Preamble"


def _esc(text: str) -> str:
    return escape(text, quote=True).replace("\n", "<br>\n")


def _edit_html(tag: str, text: str, noise: str | None) -> str:
    if not text.strip():
        # A whitespace edit would be invisible; show a marker so that noise is never hidden.
        marks = text.replace(" ", "·").replace("\t", "→").replace("\n", "↵")
        label = f' class="noise" data-noise="{noise}"' if noise else ""
        return f'<{tag}{label}><span class="redline-ws">{escape(marks)}</span>{_esc(text)}</{tag}>'
    if noise:
        return f'<{tag} class="noise" data-noise="{noise}">{_esc(text)}</{tag}>'
    return f"<{tag}>{_esc(text)}</{tag}>"


_GAP = '<span class="redline-gap" title="Unchanged text left out">[…]</span>'


def _clip_head(text: str) -> tuple[str, bool]:
    """The start of an unchanged stretch, to the end of its line and at most a few words."""
    cut = text.find("\n")
    line = text if cut < 0 else text[: cut + 1]
    if len(line) > _CONTEXT_CHARS:
        space = line.rfind(" ", 0, _CONTEXT_CHARS)
        line = line[: space if space > 0 else _CONTEXT_CHARS]
    return line, len(line) < len(text)


def _clip_tail(text: str) -> tuple[str, bool]:
    cut = text.rstrip("\n").rfind("\n")
    line = text[cut + 1 :]
    if len(line) > _CONTEXT_CHARS:
        space = line.find(" ", len(line) - _CONTEXT_CHARS)
        line = line[space if space > 0 else len(line) - _CONTEXT_CHARS :]
    return line, len(line) < len(text)


def _context_html(text: str, first: bool, last: bool) -> str:
    """Unchanged text: keep the line around each neighbouring change, collapse the rest."""
    if first and last:
        return ""
    if first:
        tail, cut = _clip_tail(text)
        return (_GAP if cut else "") + _esc(tail)
    if last:
        head, cut = _clip_head(text)
        return _esc(head) + (_GAP if cut else "")
    head, cut_head = _clip_head(text)
    if not cut_head:
        return _esc(text)
    tail, _ = _clip_tail(text[len(head) :])
    if len(head) + len(tail) >= len(text):
        return _esc(text)
    return _esc(head) + _GAP + _esc(tail)


def _segments_html(segments: tuple[tuple[str, str], ...], noise_of: dict[int, str | None]) -> str:
    out = []
    for n, (op, text) in enumerate(segments):
        if op == "=":
            out.append(_context_html(text, n == 0, n == len(segments) - 1))
        else:
            out.append(_edit_html("del" if op == "-" else "ins", text, noise_of.get(n)))
    return "".join(out)


def _segment_noise(segments: tuple[tuple[str, str], ...]) -> dict[int, str | None]:
    """Noise label per edit segment, judged on its whole run of edits (for the renderers)."""
    out: dict[int, str | None] = {}
    k = 0
    text_before = ""
    while k < len(segments):
        if segments[k][0] == "=":
            text_before = segments[k][1]
            k += 1
            continue
        start = k
        deleted = inserted = ""
        while k < len(segments) and segments[k][0] != "=":
            if segments[k][0] == "-":
                deleted += segments[k][1]
            else:
                inserted += segments[k][1]
            k += 1
        after = segments[k][1] if k < len(segments) else ""
        left = text_before[text_before.rfind("\n") + 1 :]
        right = after.split("\n", 1)[0]
        label = noise_label(
            deleted, inserted, left + deleted + right, left + inserted + right, text_before[-40:]
        )
        for n in range(start, k):
            out[n] = label
    return out


def _section_note(sd: SectionDiff) -> str:
    if sd.kind == "moved" and sd.old_path != sd.path:
        return f'<p class="redline-note">Moved from {escape(_path_label(sd.old_path or ()))}.</p>'
    if sd.kind == "moved":
        return '<p class="redline-note">Moved to a new position.</p>'
    if sd.kind == "renamed":
        return f'<p class="redline-note">Renamed from “{escape(sd.old_title)}”.</p>'
    if sd.kind == "added":
        return '<p class="redline-note">New section.</p>'
    if sd.kind == "removed":
        return '<p class="redline-note">Section removed.</p>'
    return ""


def redline_html(result: DiffResult) -> str:
    """An inline redline of the changed sections, with unchanged text collapsed around edits."""
    parts = ['<div class="redline">']
    if result.approximate:
        parts.append(
            '<p class="redline-note">Approximate diff: the texts differ too much to align word '
            "by word in the time allowed, so some passages are shown as wholly replaced.</p>"
        )
    if not result.sections:
        parts.append('<p class="redline-note">No changes.</p>')
    for sd in result.sections:
        kind_class = "" if sd.kind == "modified" else f" redline-{sd.kind}"
        parts.append(f'<section class="redline-section{kind_class}">')
        heading = escape(_path_label(sd.path))
        if sd.old_title != sd.new_title and sd.kind not in ("added", "removed"):
            parent = escape(_SEP.join(sd.path[:-1]) + _SEP) if sd.path[:-1] else ""
            heading = (
                f"{parent}{_edit_html('del', sd.old_title, sd.heading_noise)} "
                f"{_edit_html('ins', sd.new_title, sd.heading_noise)}"
            )
        parts.append(f'<h3 class="redline-heading">{heading}</h3>')
        parts.append(_section_note(sd))
        body = _segments_html(sd.segments, _segment_noise(sd.segments))
        if body:
            parts.append(f'<div class="redline-body">{body}</div>')
        parts.append("</section>")
    parts.append("</div>")
    return "\n".join(p for p in parts if p)


def side_by_side_html(result: DiffResult) -> str:
    """A two-column table, old text on the left and new on the right, one row per edit run."""
    parts = [
        '<table class="side-by-side">',
        '<thead><tr><th scope="col">Before</th><th scope="col">After</th></tr></thead>',
    ]
    for sd in result.sections:
        parts.append("<tbody>")
        label = escape(_path_label(sd.path))
        note = _section_note(sd)
        parts.append(
            f'<tr><th class="side-by-side-section" colspan="2" scope="colgroup">{label}{note}'
            "</th></tr>"
        )
        noise_of = _segment_noise(sd.segments)
        segs = sd.segments
        k = 0
        while k < len(segs):
            if segs[k][0] == "=":
                k += 1
                continue
            left = [_context_html(segs[k - 1][1], True, False)] if k > 0 else []
            right = list(left)
            while k < len(segs) and segs[k][0] != "=":
                op, text = segs[k]
                html = _edit_html("del" if op == "-" else "ins", text, noise_of.get(k))
                (left if op == "-" else right).append(html)
                k += 1
            if k < len(segs):
                tail = _context_html(segs[k][1], False, True)
                left.append(tail)
                right.append(tail)
            parts.append(
                f'<tr><td class="side-by-side-old">{"".join(left)}</td>'
                f'<td class="side-by-side-new">{"".join(right)}</td></tr>'
            )
        parts.append("</tbody>")
    parts.append("</table>")
    return "\n".join(parts)


def _quote(text: str, limit: int = 60) -> str:
    text = _squash(text)
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > limit // 2 else limit] + "…"
    return f"'{text}'"


def describe(change: Change) -> str:
    """One plain-text line for a change, e.g. "Section 5. Retention: '30 days' -> '90 days'"."""
    where = f"Section {_path_label(change.section[-1:] if change.section else ())}"
    if change.kind == "added":
        return f"{where}: new section added"
    if change.kind == "removed":
        return f"{where}: section removed"
    if change.kind == "renamed":
        return f"{where}: renamed from {_quote(change.deleted)}"
    if change.kind == "moved":
        origin = _path_label(change.old_section[-1:] if change.old_section else ())
        if change.inserted:
            return f"{where}: moved {_quote(change.inserted)} here from {origin}"
        return f"{where}: section moved"
    if change.deleted and change.inserted:
        return f"{where}: {_quote(change.deleted)} changed to {_quote(change.inserted)}"
    if change.inserted:
        return f"{where}: added {_quote(change.inserted)}"
    return f"{where}: removed {_quote(change.deleted)}"


def summary_text(result: DiffResult, max_items: int = 8) -> str:
    """A short plain-text list of the changes, for an email; noise is counted, not listed."""
    real = [c for c in result.changes if c.noise is None]
    noise = [c for c in result.changes if c.noise is not None]
    if not result.changes:
        return "No changes."
    lines = [f"- {describe(c)}" for c in real[:max_items]]
    if len(real) > max_items:
        lines.append(f"- …and {len(real) - max_items} more changes.")
    if noise:
        labels = sorted({c.noise or "" for c in noise})
        lines.append(
            f"- {len(noise)} presentation-only change{'s' if len(noise) != 1 else ''} "
            f"({', '.join(label.replace('_', ' ') for label in labels)})."
        )
    return "\n".join(lines)


def redline(old_md: str, new_md: str) -> str:
    """The inline redline HTML between two versions (what the admin and the email link show)."""
    return redline_html(compute(old_md, new_md))
