"""The classifier's output: a Reason per change and the Classification of a whole version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policy_versions.signals import Context

VERDICTS = ("cosmetic", "minor", "material")
RANK = {v: n for n, v in enumerate(VERDICTS)}
SEPARATOR = " › "


@dataclass(frozen=True)
class Reason:
    """One change and the verdict it implies, with the exact words that triggered it."""

    section: str
    topic: str
    kind: str
    deleted: str
    inserted: str
    verdict: str
    explanation: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "topic": self.topic,
            "kind": self.kind,
            "deleted": self.deleted,
            "inserted": self.inserted,
            "verdict": self.verdict,
            "explanation": self.explanation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Classification:
    """The verdict for a new version against the one in force (stored as JSONB on the version)."""

    verdict: str
    reasons: tuple[Reason, ...]
    approximate: bool = False

    @property
    def material(self) -> bool:
        return self.verdict == "material"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reasons": [r.to_dict() for r in self.reasons],
            "approximate": self.approximate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Classification:
        return cls(
            verdict=data["verdict"],
            reasons=tuple(Reason.from_dict(r) for r in data.get("reasons", ())),
            approximate=bool(data.get("approximate", False)),
        )


def quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reason(ctx: Context, kind: str, verdict: str, topic: str, explanation: str) -> Reason:
    ch = ctx.change
    return Reason(
        section=SEPARATOR.join(ch.section) if ch.section else "Preamble",
        topic=topic,
        kind=kind,
        deleted=ch.deleted,
        inserted=ch.inserted,
        verdict=verdict,
        explanation=explanation,
    )
