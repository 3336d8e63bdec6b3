"""Render a DiffResult: an inline redline, a side-by-side table and a plain-text summary.

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

from html import escape

from policy_versions.changes import Change, DiffResult, SectionDiff
from policy_versions.noise import noise_label, squash

_CONTEXT_CHARS = 160
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
    text = squash(text)
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
