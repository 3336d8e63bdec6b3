"""Notice emails: rendering once per notice and locale, and the SendGrid or outbox backend."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.error import URLError

import css_inline
from flask import current_app, render_template, url_for
from markupsafe import escape
from psycopg import Connection

from .errors import NotFound
from .tokens import acceptance_token

# Per-recipient values go in SendGrid `substitutions`, so one request carries one rendered body.
GREETING, GREETING_HTML, ACCEPT_URL = "-greeting-", "-greeting_html-", "-accept_url-"

STRINGS = {
    "en": {
        "subject": "We're updating our {title}",
        "subject_reminder": "Reminder: our {title} changes on {date}",
        "hello": "Hi {name},",
        "hello_anonymous": "Hello,",
    },
    "fr": {
        "subject": "Nous mettons à jour notre document « {title} »",
        "subject_reminder": "Rappel : notre document « {title} » change le {date}",
        "hello": "Bonjour {name},",
        "hello_anonymous": "Bonjour,",
    },
}


class SendError(Exception):
    """SendGrid did not accept the request; `detail` is what the admin sees."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class RateLimited(SendError):
    def __init__(self, detail: str, reset_at: datetime) -> None:
        super().__init__(detail, 429)
        self.reset_at = reset_at


class TransientError(SendError):
    """5xx, timeout or network error: retry with backoff. `unknown_outcome` after a timeout."""

    def __init__(self, detail: str, status: int | None = None, unknown_outcome: bool = False):
        super().__init__(detail, status)
        self.unknown_outcome = unknown_outcome


class PermanentError(SendError):
    """Any other 4xx: retrying the same request cannot succeed."""


def language(locale: str | None) -> str:
    lang = (locale or "en").replace("_", "-").split("-")[0].lower()
    return lang if lang in STRINGS else "en"


def base_url() -> str:
    return current_app.config.get("PUBLIC_BASE_URL") or "http://localhost:8000"


def _render(notice: dict, version: dict, lang: str) -> dict:
    """Subject, text and HTML (CSS inlined) with substitution tags for the per-user parts."""
    strings = STRINGS[lang]
    date = version["effective_at"].astimezone(UTC).strftime("%Y-%m-%d")
    key = "subject_reminder" if notice["kind"] == "reminder" else "subject"
    reasons = ((version.get("classification") or {}).get("reasons") or [])[:3]
    with current_app.test_request_context("/", base_url=base_url()):
        context = {
            "notice": notice,
            "version": version,
            "reasons": reasons,
            "effective_date": version["effective_at"].astimezone(UTC).strftime("%-d %B %Y"),
            "changes_url": url_for(
                "public.version_changes", slug=version["slug"], seq=version["seq"], _external=True
            ),
            "text_url": url_for(
                "public.version_show", slug=version["slug"], seq=version["seq"], _external=True
            ),
            "greeting": GREETING,
            "greeting_html": GREETING_HTML,
            "accept_url": ACCEPT_URL,
            "lang": lang,
        }
        text = render_template("email/notice.txt", **context)
        html = css_inline.inline(render_template("email/notice.html", **context))
    return {
        "subject": strings[key].format(title=version["title"], date=date),
        "text": text,
        "html": html,
    }


_RENDERED: dict[tuple, dict] = {}


def rendered(notice: dict, version: dict, lang: str) -> dict:
    """Render once per (notice, language) per process: a published version never changes."""
    key = (notice["id"], lang, base_url())
    if key not in _RENDERED:
        if len(_RENDERED) > 64:
            _RENDERED.clear()
        _RENDERED[key] = _render(notice, version, lang)
    return _RENDERED[key]


def _to_name(name: str) -> str:
    return name.replace(";", " ").replace(",", " ").strip()


def personalization(recipient: dict, version_id: int, lang: str) -> dict:
    strings = STRINGS[lang]
    name = (recipient.get("name") or "").strip()
    greeting = strings["hello"].format(name=name) if name else strings["hello_anonymous"]
    token = acceptance_token(recipient["user_id"], version_id, recipient.get("id"))
    p = {
        "to": [{"email": recipient["email"]}],
        "substitutions": {
            GREETING: greeting,
            GREETING_HTML: str(escape(greeting)),
            ACCEPT_URL: f"{base_url()}/accept/{token}",
        },
    }
    if _to_name(name):
        p["to"][0]["name"] = _to_name(name)
    if recipient.get("id") is not None:
        # Ids only: categories and custom_args are kept by SendGrid as non-PII.
        p["custom_args"] = {"delivery_id": str(recipient["id"])}
    return p


def build_message(notice: dict, version: dict, lang: str, recipients: list[dict]) -> dict:
    """One Mail Send body for up to 1,000 recipients sharing a language."""
    config = current_app.config
    body = rendered(notice, version, lang)
    message = {
        "personalizations": [personalization(r, version["id"], lang) for r in recipients],
        "from": {"email": config["MAIL_FROM"]},
        "subject": body["subject"],
        "content": [
            {"type": "text/plain", "value": body["text"]},
            {"type": "text/html", "value": body["html"]},
        ],
        "custom_args": {"notice_id": str(notice["id"])},
        "categories": [f"policy-notice-{notice['id']}"],
        # A legal notice is not a subscription: no unsubscribe footer, no tracking rewrites.
        "tracking_settings": {"subscription_tracking": {"enable": False}},
    }
    if config.get("MAIL_REPLY_TO"):
        message["reply_to"] = {"email": config["MAIL_REPLY_TO"]}
    return message


def send(conn_factory, message: dict, *, notice_id: int | None, is_test: bool = False) -> str:
    """Hand one message to SendGrid (or the outbox); return its message id or raise SendError.

    :param conn_factory: opens a database connection, used only by the outbox backend.
    """
    config = current_app.config
    if not config.get("SENDGRID_API_KEY"):
        with conn_factory() as conn, conn.transaction():
            return store_in_outbox(conn, message, notice_id=notice_id, is_test=is_test)
    return send_with_sendgrid(message)


def send_with_sendgrid(message: dict) -> str | None:
    from python_http_client.exceptions import HTTPError
    from sendgrid import SendGridAPIClient

    config = current_app.config
    # One client per call: the library shares a mutable header dict between calls.
    client = SendGridAPIClient(config["SENDGRID_API_KEY"], host=config["SENDGRID_API_HOST"])
    client.client.timeout = config["SENDGRID_TIMEOUT"]
    try:
        response = client.send(message)
    except HTTPError as exc:
        raise classify_http_error(exc.status_code, exc.body, exc.headers) from exc
    except TimeoutError as exc:
        raise TransientError(
            f"no answer within {config['SENDGRID_TIMEOUT']} s", unknown_outcome=True
        ) from exc
    except URLError as exc:
        timed_out = isinstance(exc.reason, TimeoutError)
        raise TransientError(f"network error: {exc.reason}", unknown_outcome=timed_out) from exc
    except (ConnectionError, OSError) as exc:
        # A reset after the request was written may follow an accepted send.
        raise TransientError(f"connection error: {exc}", unknown_outcome=True) from exc
    return response.headers.get("X-Message-Id")


def error_text(body: bytes | str | None) -> str:
    """SendGrid's `errors[].message` (with the field), or the raw body."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        errors = json.loads(raw).get("errors") or []
        parts = [f"{e.get('field')}: {e['message']}" if e.get("field") else e["message"]
                 for e in errors]  # fmt: skip
        return "; ".join(parts)[:2000] or raw[:2000]
    except (ValueError, AttributeError, KeyError, TypeError, RecursionError):
        return raw[:2000]


def classify_http_error(status: int, body, headers) -> SendError:
    detail = f"SendGrid {status}: {error_text(body)}"
    if status == 429:
        return RateLimited(detail, reset_time(headers))
    if status >= 500 or status == 408:
        return TransientError(detail, status)
    return PermanentError(detail, status)


def reset_time(headers) -> datetime:
    """When a 429 lifts: X-RateLimit-Reset (epoch s, any case), else Retry-After, else 60 s."""
    now = datetime.now(UTC)
    items = {k.lower(): v for k, v in (headers.items() if headers else [])}
    try:
        reset = float(items["x-ratelimit-reset"])
        return max(now, datetime.fromtimestamp(reset, UTC))
    except (KeyError, ValueError):
        pass
    retry_after = items.get("retry-after")
    if retry_after:
        try:
            return now + timedelta(seconds=float(retry_after))
        except ValueError:
            try:
                return max(now, parsedate_to_datetime(retry_after))
            except (TypeError, ValueError):
                pass
    return now + timedelta(seconds=60)


def backoff(transient_errors: int) -> timedelta:
    """Exponential backoff with full jitter: base·2^n, capped, then a random share of it."""
    config = current_app.config
    ceiling = min(
        config["SEND_RETRY_MAX_SECONDS"], config["SEND_RETRY_BASE_SECONDS"] * 2**transient_errors
    )
    return timedelta(seconds=ceiling / 2 + random.uniform(0, ceiling / 2))


def apply_substitutions(text: str, substitutions: dict[str, str]) -> str:
    for tag, value in substitutions.items():
        text = text.replace(tag, value)
    return text


def store_in_outbox(
    conn: Connection, message: dict, *, notice_id: int | None, is_test: bool
) -> str:
    """The offline backend: every recipient's email, rendered as SendGrid would, in the DB."""
    text = next(c["value"] for c in message["content"] if c["type"] == "text/plain")
    html = next(c["value"] for c in message["content"] if c["type"] == "text/html")
    rows = []
    for p in message["personalizations"]:
        subs = p.get("substitutions", {})
        to = p["to"][0]
        delivery_id = (p.get("custom_args") or {}).get("delivery_id")
        rows.append(
            {
                "notice_id": notice_id,
                "delivery_id": int(delivery_id) if delivery_id else None,
                "to_email": to["email"],
                "to_name": to.get("name", ""),
                "subject": p.get("subject", message["subject"]),
                "text": apply_substitutions(text, subs),
                "html": apply_substitutions(html, subs),
                "is_test": is_test,
            }
        )
    with conn.cursor() as cur:
        cur.executemany(
            """
            INSERT INTO outbox (notice_id, delivery_id, to_email, to_name, subject, text_body,
                                html_body, is_test)
            VALUES (%(notice_id)s, %(delivery_id)s, %(to_email)s, %(to_name)s, %(subject)s,
                    %(text)s, %(html)s, %(is_test)s)
        """,
            rows,
        )
    return f"outbox-{uuid.uuid4().hex[:22]}"


def list_outbox(conn: Connection, *, after: int | None = None, limit: int = 50) -> list[dict]:
    return conn.execute(
        """
        SELECT id, notice_id, delivery_id, to_email, to_name, subject, is_test, created_at
          FROM outbox
         WHERE %(after)s::bigint IS NULL OR id < %(after)s
      ORDER BY id DESC
         LIMIT %(limit)s
    """,
        {"after": after, "limit": limit},
    ).fetchall()


def get_outbox(conn: Connection, message_id: int) -> dict:
    """One stored email, or NotFound."""
    message = conn.execute("SELECT * FROM outbox WHERE id = %(id)s", {"id": message_id}).fetchone()
    if message is None:
        raise NotFound(f"No outbox message {message_id}.")
    return message
