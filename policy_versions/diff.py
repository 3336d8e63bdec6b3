"""Section-aware, time-bounded word diff of two Markdown policy versions: compute and apply.

The renderers live in `policy_versions.render` and the result types in `policy_versions.changes`;
both are re-exported here, so callers keep writing ``diff.compute`` and ``diff.redline_html``.
"""

from __future__ import annotations

import hashlib
import time

from policy_versions.changes import KINDS, Change, DiffResult, SectionDiff
from policy_versions.noise import NOISE, heading_noise, line_at, noise_label
from policy_versions.render import describe, redline_html, side_by_side_html, summary_text
from policy_versions.sections import match_sections, split_sections, stable_old_order
from policy_versions.wordiff import WORDS, Budget, diff_text, word_count

__all__ = [
    "KINDS",
    "NOISE",
    "Change",
    "DiffResult",
    "SectionDiff",
    "apply",
    "compute",
    "describe",
    "diff_text",
    "noise_label",
    "redline",
    "redline_html",
    "side_by_side_html",
    "summary_text",
    "word_count",
]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


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
            old_line = line_at(self.old, old_pos, old_pos + len(deleted))
            new_line = line_at(self.new, new_pos, new_pos + len(inserted))
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
    return " ".join(WORDS.findall(text.lower()))


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


def _without_boundary_blank(
    ops: list[tuple[str, str]], next_added: bool, next_removed: bool
) -> list[tuple[str, str]]:
    """Drop the blank line that only separates a section from one appended or removed after it.

    The last section of a document ends with one newline; append a section after it and the
    blank line between them falls at the end of the old last section, which would then be
    reported (and redlined) as a whitespace change the admin never made. Likewise when the
    section after it is removed. The edit is still replayed (pieces stay exact); it is just not a
    change of this section.
    """
    if len(ops) < 2 or ops[-2][0] != "=":
        return ops
    op, text = ops[-1]
    if text.strip("\n") == "" and ((op == "+" and next_added) or (op == "-" and next_removed)):
        return ops[:-1]
    return ops


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
    budget = Budget(timeout)
    olds, news = split_sections(old_md), split_sections(new_md)
    matched = match_sections(old_md, new_md, olds, news, budget)
    old_to_new = {i: j for j, i in matched.items()}
    stable = stable_old_order([matched[j] for j in range(len(news)) if j in matched])
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
        next_added = j + 1 < len(news) and j + 1 not in matched
        next_removed = i + 1 < len(olds) and i + 1 not in old_to_new
        body_ops = _without_boundary_blank(body_ops, next_added, next_removed)
        kinds = []
        noise: str | None = None
        if i not in stable:
            kinds.append("moved")
            b.changes.append(
                Change(ns.path, os_.path, "moved", "", "", 0, 0, None, os_.start, ns.start)
            )
        if any(op != "=" for op, _ in head_ops):
            old_raw, new_raw = os_.heading(old_md), ns.heading(new_md)
            noise = heading_noise(old_raw, new_raw)
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


def redline(old_md: str, new_md: str) -> str:
    """The inline redline HTML between two versions (what the admin and the email link show)."""
    return redline_html(compute(old_md, new_md))
