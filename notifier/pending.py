"""What a user must be shown now: the answer of `GET /api/v1/users/<id>/pending`.

An answer is built from two parts that change at different rates:

- `Catalog`: per policy the version in force and the next upcoming one, and every API key.
  The same for every user; it changes when an admin publishes or a key is revoked, and at the
  next effective date or end of a grace period (`valid_until`).
- `UserState`: one user's id, owning key and decisions on the catalog's versions.

`render` turns the two into the JSON text; it is the only place that decides what is pending.
`answer` builds both from the database for one request; `pendingcache` keeps them in memory
for the API's hot path. Timestamps are ISO 8601 in UTC.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote

from psycopg import Connection

# The prompt recorded as evidence when the host sends none: an update, or a policy's first version
# (version 1: a policy has one open draft at a time, numbered after the last).
DEFAULT_PROMPT = "We have updated our {title}. Please review what changed and accept to continue."
FIRST_PROMPT = "Please review our {title} and accept it to continue."


def default_prompt(title: str, seq: int) -> str:
    return (FIRST_PROMPT if seq == 1 else DEFAULT_PROMPT).replace("{title}", title)


# werkzeug's quoting of a path segment (`BaseConverter.to_url`), for the accept link.
_SEGMENT_SAFE = "!$&'()*+,/:;=@"
_FOREVER = datetime.max.replace(tzinfo=UTC)

# Per policy, the version in force (rank 0) and the next upcoming one (rank 1), published only.
CATALOG_SQL = """
    SELECT c.rank, p.id AS policy_id, p.slug, p.title, v.id, v.uid, v.seq, v.summary,
           v.effective_at, v.acceptance_mode, v.verdict, g.grace
      FROM policies p
      JOIN LATERAL (
          (SELECT 0 AS rank, id
             FROM policy_versions
            WHERE policy_id = p.id AND published_at IS NOT NULL AND effective_at <= %(now)s
         ORDER BY effective_at DESC, seq DESC
            LIMIT 1)
          UNION ALL
          (SELECT 1 AS rank, id
             FROM policy_versions
            WHERE policy_id = p.id AND published_at IS NOT NULL AND effective_at > %(now)s
         ORDER BY effective_at, seq
            LIMIT 1)
      ) c ON true
      JOIN policy_versions v ON v.id = c.id
 LEFT JOIN version_grace g ON g.version_id = v.id
  ORDER BY p.title, p.slug, c.rank
"""

KEYS_SQL = """
    SELECT k.key_sha256, k.id, k.revoked_at IS NOT NULL AS revoked,
           coalesce(s.scoped, false) AS scoped
      FROM api_keys k
 LEFT JOIN api_key_settings s ON s.api_key_id = k.id
"""

# Users and their decisions on the catalog's versions, from `u`: one user, or a page of them.
_USERS_SQL = """
    SELECT u.external_id, u.id, u.api_key_id,
           array_agg(a.version_id) FILTER (WHERE a.decision = 'accepted') AS accepted,
           array_agg(a.version_id) FILTER (WHERE a.decision = 'declined') AS declined,
           array_agg(a.recorded_at) FILTER (WHERE a.decision = 'declined') AS declined_at
      FROM ({users}) u
 LEFT JOIN acceptances a ON a.user_id = u.id AND a.version_id = ANY(%(versions)s)
  GROUP BY u.id, u.external_id, u.api_key_id
  ORDER BY u.id
"""
USER_SQL = _USERS_SQL.format(
    users="SELECT * FROM users WHERE external_id = %(ext)s AND erased_at IS NULL"
)
USERS_PAGE_SQL = _USERS_SQL.format(
    users="SELECT * FROM users WHERE id > %(after)s AND erased_at IS NULL ORDER BY id "
    "LIMIT %(limit)s"
)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Key:
    id: int
    revoked: bool
    scoped: bool


@dataclass(frozen=True)
class Candidate:
    """A version that may be pending, with every part of its item that no user changes."""

    id: int
    head: str  # '{"policy": … "blocks_at": …,' up to the user's decline
    tail: str  # the prompt and the text/redline links after `{base}`, up to the accept link
    blocking: bool


@dataclass
class Catalog:
    """Per policy, the candidates in order (in force, then upcoming); every API key."""

    policies: list[list[Candidate]]
    keys: dict[str, Key]
    version_ids: list[int]
    valid_until: datetime  # the next effective date or end of grace: then it must be rebuilt
    loaded: float = field(default_factory=time.monotonic)
    # (base URL, accepted) → the answer's text around the user's id and accept link, for users
    # who declined nothing. Users who accepted the same versions share it: a few per catalog.
    _shapes: dict[tuple, tuple[str, ...]] = field(default_factory=dict)

    def shape(self, base: str, accepted: tuple[int, ...]) -> tuple[str, ...]:
        found = self._shapes.get((base, accepted))
        if found is None:
            if len(self._shapes) > 1_000:  # bases come from the Host header: keep it bounded
                self._shapes.clear()
            found = self._shapes[(base, accepted)] = self.build_shape(base, accepted, ())
        return found

    def build_shape(self, base: str, accepted: tuple[int, ...], declined: tuple) -> tuple[str, ...]:
        """The answer's text split where the accept link goes (after each item's links)."""
        base_json = json.dumps(base)[1:-1]
        items, blocking = [], False  # each item's text up to its accept link
        for candidates in self.policies:
            for candidate in candidates:
                if candidate.id not in accepted:
                    when = dict(declined).get(candidate.id)
                    tail = candidate.tail.replace("\0base\0", base_json)
                    items.append(f'{candidate.head}"declined_at":{json.dumps(when)},{tail}')
                    blocking = blocking or candidate.blocking
                    break
        end = f'],"blocking":{json.dumps(blocking)}}}'
        if items:
            pieces = [',"pending":[' + items[0], *("}}," + item for item in items[1:]), "}}" + end]
        else:
            pieces = [',"pending":[' + end]
        return tuple(pieces)


class UserState(NamedTuple):
    """A plain tuple (of numbers and strings), so the garbage collector never walks the cache."""

    id: int
    api_key_id: int | None
    accepted: tuple[int, ...]  # catalog versions this user accepted
    declined: tuple[tuple[int, str], ...]  # (version id, when, ISO 8601) for those declined
    loaded: float  # time.monotonic() when read from the database


def load_catalog(conn: Connection, now: datetime, *, with_keys: bool = True) -> Catalog:
    rows = conn.execute(CATALOG_SQL, {"now": now}).fetchall()
    by_policy: dict[int, list[Candidate]] = {}
    valid_until = _FOREVER
    for row in rows:
        if row["rank"] == 1:
            valid_until = min(valid_until, row["effective_at"])
        explicit = row["acceptance_mode"] == "explicit"
        blocks_at = row["effective_at"] + (row["grace"] or timedelta(0))
        if explicit and blocks_at > now:
            valid_until = min(valid_until, blocks_at)
        if row["acceptance_mode"] == "none":
            # Never asked for, but it still displaces the older version in force.
            by_policy.setdefault(row["policy_id"], [])
            continue
        by_policy.setdefault(row["policy_id"], []).append(_candidate(row, now, blocks_at))
    keys = {}
    if with_keys:  # the cache checks keys from memory; the database path already has its key
        keys = {
            r["key_sha256"]: Key(r["id"], r["revoked"], r["scoped"])
            for r in conn.execute(KEYS_SQL).fetchall()
        }
    return Catalog(
        policies=[c for c in by_policy.values() if c],
        keys=keys,
        version_ids=[c.id for cs in by_policy.values() for c in cs],
        valid_until=valid_until,
    )


def _candidate(row: dict, now: datetime, blocks_at: datetime) -> Candidate:
    explicit = row["acceptance_mode"] == "explicit"
    blocking = explicit and now >= blocks_at
    dumps = json.dumps
    head = (
        f'{{"policy":{dumps(row["slug"])},"title":{dumps(row["title"])},'
        f'"version":{row["seq"]},"version_uid":"{row["uid"]}",'
        f'"summary":{dumps(row["summary"])},"effective_at":"{iso(row["effective_at"])}",'
        f'"in_force":{dumps(row["effective_at"] <= now)},'
        f'"mode":{dumps(row["acceptance_mode"])},'
        f'"material":{dumps(row["verdict"] == "material")},"blocking":{dumps(blocking)},'
        f'"blocks_at":{dumps(iso(blocks_at) if explicit else None)},'
    )
    text = f"\0base\0policies/{quote(row['slug'])}/versions/{row['seq']}"
    tail = (
        f'"prompt":{dumps(default_prompt(row["title"], row["seq"]))},'
        f'"links":{{"text":"{text}","redline":"{text}/changes","accept":'
    )
    return Candidate(row["id"], head, tail, blocking)


def _user_state(row: dict, loaded: float) -> UserState:
    declined = ()
    if row["declined"]:
        declined = tuple(sorted(zip(row["declined"], map(iso, row["declined_at"]), strict=True)))
    accepted = tuple(sorted(row["accepted"] or ()))
    return UserState(row["id"], row["api_key_id"], accepted, declined, loaded)


def load_user(conn: Connection, catalog: Catalog, external_id: str) -> UserState | None:
    loaded = time.monotonic()
    row = conn.execute(USER_SQL, {"ext": external_id, "versions": catalog.version_ids}).fetchone()
    return None if row is None else _user_state(row, loaded)


def load_users(
    conn: Connection, catalog: Catalog, after: int, limit: int
) -> list[tuple[str, UserState]]:
    """Up to `limit` users with ids above `after`, in id order: a page of the cache's warm-up."""
    loaded = time.monotonic()
    rows = conn.execute(
        USERS_PAGE_SQL, {"after": after, "limit": limit, "versions": catalog.version_ids}
    ).fetchall()
    return [(row["external_id"], _user_state(row, loaded)) for row in rows]


def render(catalog: Catalog, user: UserState, external_id: str, base: str) -> str:
    """The pending answer as JSON text: per policy, the first candidate not yet accepted."""
    accept = json.dumps(f"{base}api/v1/users/{quote(external_id, safe=_SEGMENT_SAFE)}/acceptances")
    if user.declined:  # each decline has its own time: such answers are not shared
        shape = catalog.build_shape(base, user.accepted, user.declined)
    else:
        shape = catalog.shape(base, user.accepted)
    return f'{{"external_id":{json.dumps(external_id)}{accept.join(shape)}'


def visible(key: Key, user: UserState | None) -> bool:
    """A scoped key sees only its own users."""
    return user is not None and (not key.scoped or user.api_key_id == key.id)


def answer(
    conn: Connection,
    external_id: str,
    scope: int | None,
    now: datetime,
    base: str,
    catalog: Catalog | None = None,
):
    """The answer with this user's decisions read on `conn` now (the widget, right after it
    recorded implied acceptances; admin pages; a cold cache): the JSON text, or None when no
    such user is visible to `scope`. The catalog is read too unless one is given."""
    catalog = catalog or load_catalog(conn, now, with_keys=False)
    user = load_user(conn, catalog, external_id)
    if user is None or (scope is not None and user.api_key_id != scope):
        return None
    return render(catalog, user, external_id, base)
