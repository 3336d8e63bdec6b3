"""SQL for the admin reports: per-version counts, timeline, segments, pending users, per user."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from psycopg import Connection

PAGE = 50


# The version of the policy in force now (`v`'s policy), to tell a superseded version: its users
# are asked about the later one, so those who never decided on it are no longer "pending".
IN_FORCE_SQL = """
    LEFT JOIN LATERAL (
        SELECT c.seq, c.effective_at
          FROM policy_versions c
         WHERE c.policy_id = v.policy_id AND c.published_at IS NOT NULL AND c.effective_at <= now()
      ORDER BY c.effective_at DESC, c.seq DESC
         LIMIT 1
    ) cur ON true
"""


def version_rows(conn: Connection) -> list[dict]:
    """Every published version with its decision counts (one scan of the evidence index) and,
    if a later version is in force, that version (`superseded_by`, `superseded_at`)."""
    total = active_users(conn)
    rows = conn.execute(f"""
        SELECT v.id, v.seq, v.effective_at, v.acceptance_mode, v.verdict, p.slug, p.title,
               CASE WHEN cur.seq > v.seq THEN cur.seq END AS superseded_by,
               CASE WHEN cur.seq > v.seq THEN cur.effective_at END AS superseded_at,
               count(a.id) FILTER (WHERE a.decision = 'accepted' AND a.method <> 'implied')
                   AS accepted,
               count(a.id) FILTER (WHERE a.method = 'implied') AS implied,
               count(a.id) FILTER (WHERE a.decision = 'declined') AS declined
          FROM policy_versions v
          JOIN policies p ON p.id = v.policy_id
          {IN_FORCE_SQL}
     LEFT JOIN acceptances a ON a.version_id = v.id
         WHERE v.published_at IS NOT NULL
      GROUP BY v.id, p.id, cur.seq, cur.effective_at
      ORDER BY p.title, v.seq DESC
    """).fetchall()
    for row in rows:
        _rates(row, total)
    return rows


def superseded(conn: Connection, version_id: int) -> dict | None:
    """The later version in force now (`seq`, `effective_at`) if this one is superseded."""
    return conn.execute(
        f"""
        SELECT cur.seq, cur.effective_at
          FROM policy_versions v
          {IN_FORCE_SQL}
         WHERE v.id = %(v)s AND cur.seq > v.seq
    """,
        {"v": version_id},
    ).fetchone()


def active_users(conn: Connection) -> int:
    return conn.execute("SELECT count(*) AS n FROM users WHERE erased_at IS NULL").fetchone()["n"]


def _rates(row: dict, total: int) -> dict:
    row["users"] = total
    row["pending"] = max(total - row["accepted"] - row["implied"], 0)
    for name in ("accepted", "implied", "declined", "pending"):
        row[f"{name}_rate"] = (row[name] / total * 100) if total else 0.0
    return row


def version_counts(conn: Connection, version_id: int) -> dict:
    row = conn.execute(
        """
        SELECT count(*) FILTER (WHERE a.decision = 'accepted' AND a.method <> 'implied')
                   AS accepted,
               count(*) FILTER (WHERE a.method = 'implied') AS implied,
               count(*) FILTER (WHERE a.decision = 'declined') AS declined
          FROM acceptances a
          JOIN users u ON u.id = a.user_id
         WHERE a.version_id = %(v)s AND u.erased_at IS NULL
    """,
        {"v": version_id},
    ).fetchone()
    return _rates(row, active_users(conn))


def timeline(conn: Connection, version_id: int) -> list[dict]:
    """Acceptances per day (explicit and implied), cumulative."""
    rows = conn.execute(
        """
        SELECT date_trunc('day', recorded_at) AS day, count(*) AS n
          FROM acceptances
         WHERE version_id = %(v)s AND decision = 'accepted'
      GROUP BY 1
      ORDER BY 1
    """,
        {"v": version_id},
    ).fetchall()
    total = 0
    for row in rows:
        total += row["n"]
        row["cumulative"] = total
    return rows


def chart(points: list[dict], users: int, width: int = 600, height: int = 200) -> dict:
    """Coordinates for a server-rendered SVG line of the cumulative acceptance rate."""
    if not points or not users:
        return {"width": width, "height": height, "polyline": "", "points": [], "labels": []}
    first, last = points[0]["day"], points[-1]["day"]
    span = max((last - first).days, 1)
    coords = []
    for p in points:
        x = 40 + (p["day"] - first).days / span * (width - 60)
        y = height - 30 - (p["cumulative"] / users) * (height - 50)
        coords.append(
            {"x": round(x, 1), "y": round(y, 1), "label": f"{p['day']:%Y-%m-%d}: {p['cumulative']}"}
        )
    if len(coords) == 1:
        coords.insert(0, {"x": 40, "y": height - 30, "label": ""})
    return {
        "width": width,
        "height": height,
        "polyline": " ".join(f"{c['x']},{c['y']}" for c in coords),
        "points": [c for c in coords if c["label"]],
        "labels": [f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"],
    }


def segments(conn: Connection, version_id: int) -> list[dict]:
    rows = conn.execute(
        """
        SELECT coalesce(u.segment, '(none)') AS segment, count(*) AS users,
               count(a.id) AS accepted, count(d.id) AS declined
          FROM users u
     LEFT JOIN acceptances a
            ON a.user_id = u.id AND a.version_id = %(v)s AND a.decision = 'accepted'
     LEFT JOIN acceptances d
            ON d.user_id = u.id AND d.version_id = %(v)s AND d.decision = 'declined'
         WHERE u.erased_at IS NULL
      GROUP BY 1
      ORDER BY 2 DESC, 1
    """,
        {"v": version_id},
    ).fetchall()
    for row in rows:
        row["rate"] = row["accepted"] / row["users"] * 100 if row["users"] else 0.0
    return rows


PENDING_SQL = """
    SELECT u.id, u.external_id, u.email, u.name, u.segment, u.locale, d.recorded_at AS declined_at
      FROM users u
 LEFT JOIN acceptances d
        ON d.user_id = u.id AND d.version_id = %(v)s AND d.decision = 'declined'
     WHERE u.erased_at IS NULL
       AND NOT EXISTS (
           SELECT 1
             FROM acceptances a
            WHERE a.user_id = u.id AND a.version_id = %(v)s AND a.decision = 'accepted'
       )
       AND (%(segment)s::text IS NULL OR u.segment = %(segment)s)
       AND (%(q)s::text IS NULL OR u.external_id ILIKE %(q)s OR u.email ILIKE %(q)s
            OR u.name ILIKE %(q)s)
       AND u.id > %(after)s
  ORDER BY u.id
"""


def _filters(version_id: int, q: str | None, segment: str | None, after: int = 0) -> dict:
    like = f"%{q.strip()}%" if q and q.strip() else None
    return {"v": version_id, "q": like, "segment": segment or None, "after": after}


def pending_page(
    conn: Connection, version_id: int, *, q: str | None, segment: str | None, after: int
) -> tuple[list[dict], int | None]:
    """One page of pending users (keyset by id) and the cursor of the next page."""
    rows = conn.execute(
        PENDING_SQL + " LIMIT %(limit)s",
        _filters(version_id, q, segment, after) | {"limit": PAGE + 1},
    ).fetchall()
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return rows, (rows[-1]["id"] if more else None)


def pending_all(
    conn: Connection, version_id: int, *, q: str | None, segment: str | None
) -> Iterator[dict]:
    with conn.transaction(), conn.cursor(name="pending_export") as cur:
        cur.itersize = 2000
        cur.execute(PENDING_SQL, _filters(version_id, q, segment))
        yield from cur


def search_users(conn: Connection, q: str | None, after: int = 0) -> list[dict]:
    like = f"%{q.strip()}%" if q and q.strip() else None
    return conn.execute(
        """
        SELECT id, external_id, email, name, segment, erased_at
          FROM users
         WHERE (%(q)s::text IS NULL OR external_id ILIKE %(q)s OR email ILIKE %(q)s
                OR name ILIKE %(q)s)
           AND id > %(after)s
      ORDER BY id
         LIMIT %(limit)s
    """,
        {"q": like, "after": after, "limit": PAGE},
    ).fetchall()


def as_of(value: datetime | None) -> str:
    return value.isoformat() if value else ""
