"""Frozen dataclasses read straight from rows with psycopg's class_row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Policy:
    id: int
    slug: str
    title: str
    created_at: datetime


@dataclass(frozen=True)
class Version:
    id: int
    uid: UUID
    policy_id: int
    seq: int
    body_md: str
    body_html: str
    content_sha256: str
    summary: str
    effective_at: datetime | None
    published_at: datetime | None
    published_by: int | None
    created_at: datetime
    created_by: int | None
    updated_at: datetime
    suggested_verdict: str | None
    classification: dict[str, Any] | None
    verdict: str | None
    verdict_override_reason: str | None
    acceptance_mode: str

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    def state(self, at: datetime, in_force_id: int | None) -> str:
        """draft, upcoming, in force or superseded, as seen at instant `at`."""
        if self.published_at is None:
            return "draft"
        if self.effective_at is not None and self.effective_at > at:
            return "upcoming"
        return "in force" if self.id == in_force_id else "superseded"
