"""The domain library: policies, immutable versions, Markdown, diffs and materiality. No Flask."""

from __future__ import annotations

from .diff import redline
from .errors import Conflict, NotFound, NotifierError, PayloadTooLarge, ValidationError
from .markdown import canonical, content_hash, render
from .materiality import classify
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
    "classify",
    "content_hash",
    "in_force",
    "publish",
    "redline",
    "render",
    "upcoming",
]
