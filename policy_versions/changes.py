"""What a diff found: Change, SectionDiff and DiffResult, with their JSON form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("added", "removed", "modified", "moved", "renamed")


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
