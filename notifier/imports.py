"""Bulk user loads (API batches and CSV files of any size) through a COPY staging table."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from psycopg import Connection

from .audience import COLUMNS, UserInput, parse_user
from .errors import ValidationError

MAX_REPORTED_ERRORS = 1000
HAS = ("email", "name", "locale", "segment", "tags")


class ImportAborted(Exception):
    """The whole input is unusable (wrong columns, not UTF-8): nothing was written."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Report:
    """What an import did, in words an admin or a host developer can act on."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    error_count: int = 0
    errors: list[dict] = field(default_factory=list)
    written: bool = False
    aborted: str | None = None

    def add_error(self, line: int, fields: dict[str, str], external_id: str | None = None):
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            for name, message in fields.items():
                self.errors.append(
                    {"line": line, "external_id": external_id, "field": name, "message": message}
                )

    @property
    def summary(self) -> str:
        if self.aborted:
            return f"Nothing was imported: {self.aborted}"
        if not self.written:
            return (
                f"Nothing was imported: {self.error_count} of {self.rows} rows have errors "
                "and the import was all-or-nothing."
            )
        text = f"Imported {self.created + self.updated} of {self.rows} rows "
        text += f"({self.created} created, {self.updated} updated)"
        if self.error_count:
            text += f"; {self.error_count} rows with errors were not imported"
        if self.skipped:
            text += f"; {self.skipped} rows were skipped (created concurrently — import again)"
        return text + "."

    def as_json(self) -> dict:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "written": self.written,
            "error_count": self.error_count,
            "errors": self.errors,
            "summary": self.summary,
        }


def load(
    conn: Connection,
    rows: Iterable[tuple[int, dict]],
    *,
    scope: int | None,
    all_or_nothing: bool,
    report: Report | None = None,
) -> Report:
    """Validate and stage every row, then write them in one transaction — or nothing.

    `rows` yields (line number, user fields). Rows are streamed into a temporary table with
    COPY, so memory stays flat whatever the input size.
    """
    report = report or Report()
    with conn.transaction():
        conn.execute("""
            CREATE TEMP TABLE import_rows (
                line integer NOT NULL, external_id text NOT NULL, email text, name text,
                locale text, segment text, tags text[],
                has_email boolean, has_name boolean, has_locale boolean, has_segment boolean,
                has_tags boolean
            ) ON COMMIT DROP
        """)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY import_rows (line, external_id, email, name, locale, segment, tags, "
                "has_email, has_name, has_locale, has_segment, has_tags) FROM STDIN"
            ) as cp:
                cp.set_types(
                    ["int4", "text", "text", "text", "text", "text", "text[]"] + ["bool"] * 5
                )
                for line, data in rows:
                    report.rows += 1
                    if "_error" in data:
                        report.add_error(line, data["_error"], data.get("external_id"))
                        continue
                    try:
                        user = parse_user(data)
                    except ValidationError as exc:
                        ext = data.get("external_id") if isinstance(data, dict) else None
                        report.add_error(line, exc.fields, ext if isinstance(ext, str) else None)
                        continue
                    cp.write_row(_staged(line, user))
        _reject_duplicates_and_foreign(conn, report, scope)
        if report.error_count and all_or_nothing:
            return report  # the transaction commits nothing but the dropped temp table
        updated = conn.execute(
            """
            UPDATE users AS u
               SET email = CASE WHEN r.has_email THEN r.email ELSE u.email END,
                   name = CASE WHEN r.has_name THEN r.name ELSE u.name END,
                   locale = CASE WHEN r.has_locale THEN r.locale ELSE u.locale END,
                   segment = CASE WHEN r.has_segment THEN r.segment ELSE u.segment END,
                   tags = CASE WHEN r.has_tags THEN r.tags ELSE u.tags END,
                   updated_at = now()
              FROM import_rows AS r
             WHERE u.external_id = r.external_id
        """
        ).rowcount
        created = conn.execute(
            """
            INSERT INTO users (external_id, email, name, locale, segment, tags, api_key_id)
            SELECT r.external_id, r.email, r.name, r.locale, r.segment, r.tags, %(scope)s
              FROM import_rows AS r
             WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.external_id = r.external_id)
          ORDER BY r.line
            ON CONFLICT (external_id) DO NOTHING
        """,
            {"scope": scope},
        ).rowcount
        staged = conn.execute("SELECT count(*) AS n FROM import_rows").fetchone()["n"]
        report.updated, report.created = updated, created
        report.skipped = staged - updated - created
        report.written = True
    return report


def _staged(line: int, user: UserInput) -> list:
    return [
        line,
        user.external_id,
        user.email,
        user.name,
        user.locale,
        user.segment,
        user.tags,
        *(name in user.present for name in HAS),
    ]


def _reject_duplicates_and_foreign(conn: Connection, report: Report, scope: int | None) -> None:
    """An id twice in one input, or owned by another key, is an error on that row."""
    duplicates = conn.execute("""
        DELETE FROM import_rows AS r
         USING (SELECT external_id, min(line) AS first_line
                  FROM import_rows
              GROUP BY external_id
                HAVING count(*) > 1) AS d
         WHERE r.external_id = d.external_id AND r.line > d.first_line
        RETURNING r.line, r.external_id, d.first_line
    """).fetchall()
    for row in sorted(duplicates, key=lambda r: r["line"]):
        report.add_error(
            row["line"],
            {"external_id": f"duplicate of line {row['first_line']}"},
            row["external_id"],
        )
    if scope is not None:
        foreign = conn.execute(
            """
            DELETE FROM import_rows AS r
             USING users AS u
             WHERE u.external_id = r.external_id AND u.api_key_id IS DISTINCT FROM %(scope)s
            RETURNING r.line, r.external_id
        """,
            {"scope": scope},
        ).fetchall()
        for row in sorted(foreign, key=lambda r: r["line"]):
            report.add_error(
                row["line"], {"external_id": "not available to this API key"}, row["external_id"]
            )


def json_rows(items: list) -> Iterator[tuple[int, dict]]:
    """Bulk API items, numbered from 1 like lines."""
    for index, item in enumerate(items, 1):
        if isinstance(item, dict):
            yield index, item
        else:
            yield index, {"external_id": None, "_error": {"user": "must be a JSON object"}}


def csv_rows(stream: IO[bytes]) -> Iterator[tuple[int, dict]]:
    """CSV records from a binary stream, decoded line by line so an encoding error names its line.

    Raises ImportAborted for problems that make the whole file unusable.
    """

    def lines() -> Iterator[str]:
        for number, raw in enumerate(stream, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ImportAborted(
                    f"line {number} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                    f"position {exc.start + 1}). Save the file as UTF-8 (CSV UTF-8 in Excel) "
                    "and import it again.",
                    line=number,
                ) from exc
            yield text.removeprefix("\ufeff") if number == 1 else text

    reader = csv.reader(lines())
    try:
        header = next(reader)
    except StopIteration as exc:
        raise ImportAborted("the file is empty; the first line must name the columns.") from exc
    except csv.Error as exc:
        raise ImportAborted(f"line 1 is not valid CSV ({exc}).", line=1) from exc
    header = [h.strip().lower() for h in header]
    unknown = [h for h in header if h not in COLUMNS]
    if "external_id" not in header or unknown or len(set(header)) != len(header):
        problems = []
        if "external_id" not in header:
            problems.append("the column external_id is missing")
        if unknown:
            problems.append("unknown column(s) " + ", ".join(repr(h) for h in unknown))
        if len(set(header)) != len(header):
            problems.append("a column appears twice")
        raise ImportAborted(
            f"{'; '.join(problems)} in the first line. Expected columns: "
            f"{', '.join(COLUMNS)} (only external_id is required).",
            line=1,
        )
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportAborted(
                f"line {reader.line_num} is not valid CSV ({exc}).", line=reader.line_num
            ) from exc
        if not record or record == [""]:
            continue  # blank line
        if len(record) != len(header):
            yield (
                reader.line_num,
                {
                    "external_id": record[0] if header[0] == "external_id" and record else None,
                    "_error": {"row": f"expected {len(header)} fields, found {len(record)}"},
                },
            )
            continue
        yield reader.line_num, dict(zip(header, record, strict=True))
