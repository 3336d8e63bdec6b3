"""The domain library: policies, immutable versions, Markdown, diffs and materiality. No Flask."""

from __future__ import annotations

from .errors import Conflict, NotFound, NotifierError, PayloadTooLarge, ValidationError
from .markdown import canonical, content_hash, render
from .models import Policy, Version
from .store import in_force, publish, upcoming

__all__ = [
    "Conflict",
    "NotFound",
    "NotifierError",
    "PayloadTooLarge",
    "Policy",
    "ValidationError",
    "Version",
    "canonical",
    "content_hash",
    "in_force",
    "publish",
    "render",
    "upcoming",
]
