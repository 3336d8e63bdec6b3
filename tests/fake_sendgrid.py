"""A local fake of SendGrid's v3 Mail Send API that enforces its documented contract."""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

MAIL_SEND_PATH = "/v3/mail/send"
# "email incl. attachments < 30 MB" (Mail Send limitations); the whole body stands in for the email.
MAX_BODY_BYTES = 30 * 1024 * 1024
# An oversized body is still read (up to this much) before the 413, because closing a socket with
# unread data makes the kernel send RST and the client would see ConnectionResetError, not a 413.
DRAIN_LIMIT = 64 * 1024 * 1024
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
MAX_CUSTOM_ARGS_BYTES = 10_000
MAX_SUBSTITUTIONS_BYTES = 10_000
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_SEND_AT_AHEAD = 72 * 3600
RATE_LIMIT = 600  # what X-RateLimit-Limit reports on an injected 429
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "x-sg-id x-sg-eid received dkim-signature Content-Type Content-Transfer-Encoding "
        "To From Subject Reply-To CC BCC"
    ).split()
)
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$"
)
ROLES = ("to", "cc", "bcc")

Fail = Callable[[str | None, str], None]


def validate_mail(payload: Any, now: float | None = None) -> list[dict[str, Any]]:
    """Every contract violation in a Mail Send body as SendGrid `errors` items; empty if valid."""
    errors: list[dict[str, Any]] = []

    def fail(field: str | None, message: str) -> None:
        errors.append({"message": message, "field": field, "help": None})

    if not isinstance(payload, dict):
        fail(None, "The request body must be a JSON object.")
        return errors
    now = time.time() if now is None else now
    templated = "template_id" in payload
    if templated and not _nonempty_str(payload["template_id"]):
        fail("template_id", "The template_id must be a non-empty string.")

    personalizations = _check_personalizations(payload.get("personalizations"), now, fail)

    if "from" not in payload:
        fail("from", "The from object must be provided for every email send.")
    else:
        _check_from(payload["from"], "from", fail)

    subject = payload.get("subject")
    if "subject" in payload and not _nonempty_str(subject):
        fail("subject", "The subject must be a string at least one character long.")
    if not templated and not _nonempty_str(subject):
        every = bool(personalizations) and all(
            _nonempty_str(p.get("subject")) for p in personalizations
        )
        if not every:
            fail(
                "subject",
                "The subject is required unless a template_id is given or every personalization "
                "has a subject.",
            )

    _check_content(payload.get("content"), templated, fail)

    _check_custom_args(payload, fail)
    _check_categories(payload.get("categories"), fail)
    _check_reply_to(payload, fail)
    _check_send_at(payload.get("send_at"), "send_at", now, fail)
    _check_headers(payload.get("headers"), "headers", fail)
    _check_mail_settings(payload.get("mail_settings"), fail)
    _check_misc(payload, fail)
    return errors


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _check_personalizations(value: Any, now: float, fail: Fail) -> list[dict[str, Any]]:
    """Check the personalizations; return the well-formed ones for the message-level checks."""
    if not isinstance(value, list) or not value:
        fail(
            "personalizations",
            "The personalizations field is required and must have at least one item.",
        )
        return []
    if len(value) > MAX_PERSONALIZATIONS:
        fail(
            "personalizations",
            f"A request may have at most {MAX_PERSONALIZATIONS} personalizations; "
            f"this one has {len(value)}.",
        )
    seen: dict[str, str] = {}
    total = 0
    good = []
    for i, p in enumerate(value):
        where = f"personalizations.{i}"
        if not isinstance(p, dict):
            fail(where, "Each personalization must be a JSON object.")
            continue
        good.append(p)
        if not isinstance(p.get("to"), list) or not p["to"]:
            fail(f"{where}.to", "The to array is required and must hold at least one email object.")
        for role in ROLES:
            entries = p.get(role)
            if entries is None or (role == "to" and (not isinstance(entries, list) or not entries)):
                continue  # a missing or empty `to` was reported above
            if not isinstance(entries, list):
                fail(f"{where}.{role}", f"The {role} field must be an array of email objects.")
                continue
            for j, entry in enumerate(entries):
                field = f"{where}.{role}.{j}"
                address = _check_address(entry, field, fail, plain_name=role == "to")
                if address is None:
                    continue
                total += 1
                first = seen.setdefault(address.lower(), field)
                if first != field:
                    fail(
                        f"{field}.email",
                        f"Each email address may appear only once per request (to, cc and bcc of "
                        f"all personalizations); {address} is already in {first}.",
                    )
        if "subject" in p and not _nonempty_str(p["subject"]):
            fail(f"{where}.subject", "The subject must be a string at least one character long.")
        if "from" in p:
            _check_from(p["from"], f"{where}.from", fail)
        _check_send_at(p.get("send_at"), f"{where}.send_at", now, fail)
        _check_headers(p.get("headers"), f"{where}.headers", fail)
        substitutions = p.get("substitutions")
        if substitutions is not None:
            size = len(json.dumps(substitutions, separators=(",", ":")).encode())
            if not isinstance(substitutions, dict) or size > MAX_SUBSTITUTIONS_BYTES:
                fail(
                    f"{where}.substitutions",
                    f"Substitutions must be an object of at most {MAX_SUBSTITUTIONS_BYTES} bytes.",
                )
    if total > MAX_RECIPIENTS:
        fail(
            "personalizations",
            f"A request may have at most {MAX_RECIPIENTS} recipients (to, cc and bcc across all "
            f"personalizations); this one has {total}.",
        )
    return good


def _check_address(entry: Any, field: str, fail: Fail, plain_name: bool = False) -> str | None:
    """Check one email object; return its address when valid."""
    if not isinstance(entry, dict):
        fail(field, "An email object must be a JSON object with an email field.")
        return None
    email = entry.get("email")
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        fail(f"{field}.name", "The name must be a string.")
    elif plain_name and name and (";" in name or "," in name):
        fail(f"{field}.name", "The to.name field cannot contain ';' or ','.")
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        fail(f"{field}.email", "Does not contain a valid address.")
        return None
    return email


def _check_from(value: Any, field: str, fail: Fail) -> None:
    if isinstance(value, dict) and not all(
        v.isascii() for v in (value.get("email"), value.get("name")) if isinstance(v, str)
    ):
        fail(field, "The from field does not support Unicode characters.")
        return
    _check_address(value, field, fail)


def _check_content(value: Any, templated: bool, fail: Fail) -> None:
    if value is None:
        if not templated:
            fail("content", "Unless a template_id is given, content is required.")
        return
    if not isinstance(value, list) or not value:
        fail("content", "The content field must be a non-empty array of {type, value} objects.")
        return
    types: list[str] = []
    for i, block in enumerate(value):
        if not isinstance(block, dict):
            fail(f"content.{i}", "Each content block must be a {type, value} object.")
            continue
        kind, text = block.get("type"), block.get("value")
        if not _nonempty_str(kind):
            fail(f"content.{i}.type", "The content type must be a non-empty string.")
        elif kind.lower() in types:
            fail(f"content.{i}.type", f"Each content type may appear only once; {kind} repeats.")
        else:
            types.append(kind.lower())
        if not _nonempty_str(text):
            fail(
                f"content.{i}.value",
                "The content value must be a string at least one character long.",
            )
    # tsg_mail_v3.yaml: text/plain and text/html, if included, are the first items, in that order.
    leading = [t for t in ("text/plain", "text/html") if t in types]
    if types[: len(leading)] != leading:
        fail("content", "If included, text/plain and text/html must come first, in that order.")


def _check_custom_args(payload: dict[str, Any], fail: Fail) -> None:
    """Each email's custom_args (message level plus its personalization's) under 10,000 bytes.

    tsg_mail_v3.yaml states the limit on the message-level object and on each personalization's,
    not on their sum over a request; a sum would also forbid the per-recipient `delivery_id` in
    each of 1,000 personalizations that the project relies on.
    """
    message_bytes = _custom_args_bytes(payload.get("custom_args"), "custom_args", fail)
    if message_bytes >= MAX_CUSTOM_ARGS_BYTES:
        fail("custom_args", f"custom_args must be under {MAX_CUSTOM_ARGS_BYTES} bytes.")
        return
    personalizations = payload.get("personalizations")
    for i, p in enumerate(personalizations if isinstance(personalizations, list) else []):
        if not isinstance(p, dict) or "custom_args" not in p:
            continue
        field = f"personalizations.{i}.custom_args"
        size = message_bytes + _custom_args_bytes(p["custom_args"], field, fail)
        if size >= MAX_CUSTOM_ARGS_BYTES:
            fail(
                field,
                f"custom_args (message level plus this personalization's) must be under "
                f"{MAX_CUSTOM_ARGS_BYTES} bytes; these are {size}.",
            )


def _custom_args_bytes(value: Any, field: str, fail: Fail) -> int:
    if value is None:
        return 0
    if not isinstance(value, dict):
        fail(field, "custom_args must be an object whose values are strings.")
        return 0
    for key, arg in value.items():
        if not isinstance(arg, str):
            fail(f"{field}.{key}", "custom_args values must be strings.")
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_categories(value: Any, fail: Fail) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        fail("categories", "categories must be an array of strings.")
        return
    if len(value) > MAX_CATEGORIES:
        fail("categories", f"At most {MAX_CATEGORIES} categories; this request has {len(value)}.")
    for i, category in enumerate(value):
        if not _nonempty_str(category) or len(category) > MAX_CATEGORY_CHARS:
            fail(
                f"categories.{i}",
                f"A category must be a string of 1 to {MAX_CATEGORY_CHARS} chars.",
            )
        elif value.index(category) != i:
            fail(f"categories.{i}", f"Categories must be unique; {category!r} repeats.")


def _check_reply_to(payload: dict[str, Any], fail: Fail) -> None:
    if "reply_to" in payload and "reply_to_list" in payload:
        fail("reply_to", "reply_to and reply_to_list cannot both be given.")
    if "reply_to" in payload:
        _check_address(payload["reply_to"], "reply_to", fail)
    if "reply_to_list" in payload:
        replies = payload["reply_to_list"]
        if not isinstance(replies, list) or not 1 <= len(replies) <= 1000:
            fail("reply_to_list", "reply_to_list must be an array of 1 to 1000 email objects.")
            return
        for i, entry in enumerate(replies):
            _check_address(entry, f"reply_to_list.{i}", fail)


def _check_send_at(value: Any, field: str, now: float, fail: Fail) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        fail(field, "send_at must be an integer UNIX timestamp.")
    elif value > now + MAX_SEND_AT_AHEAD:
        fail(field, "send_at cannot be more than 72 hours in the future.")


def _check_headers(value: Any, field: str, fail: Fail) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        fail(field, "headers must be an object of string values.")
        return
    for name, header in value.items():
        if name.lower() in RESERVED_HEADERS:
            fail(f"{field}.{name}", f"The {name} header is reserved and cannot be set.")
        elif not isinstance(header, str):
            fail(f"{field}.{name}", "Header values must be strings.")


def _check_mail_settings(value: Any, fail: Fail) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        fail("mail_settings", "mail_settings must be an object.")
        return
    sandbox = value.get("sandbox_mode")
    if sandbox is not None and (
        not isinstance(sandbox, dict) or not isinstance(sandbox.get("enable", False), bool)
    ):
        fail(
            "mail_settings.sandbox_mode.enable", "The sandbox_mode enable field must be a boolean."
        )


def _check_misc(payload: dict[str, Any], fail: Fail) -> None:
    asm = payload.get("asm")
    if asm is not None and (not isinstance(asm, dict) or not isinstance(asm.get("group_id"), int)):
        fail("asm.group_id", "asm needs an integer group_id.")
    elif asm is not None and not (
        isinstance(asm.get("groups_to_display", []), list)
        and len(asm.get("groups_to_display", [])) <= 25
    ):
        fail("asm.groups_to_display", "groups_to_display must be an array of at most 25 ids.")
    pool = payload.get("ip_pool_name")
    if pool is not None and (not isinstance(pool, str) or not 2 <= len(pool) <= 64):
        fail("ip_pool_name", "ip_pool_name must be 2 to 64 characters.")
    attachments = payload.get("attachments") or []
    for i, attachment in enumerate(attachments if isinstance(attachments, list) else [None]):
        if not isinstance(attachment, dict) or not all(
            _nonempty_str(attachment.get(k)) for k in ("content", "filename")
        ):
            fail(f"attachments.{i}", "An attachment needs non-empty content and filename strings.")


def _is_sandbox(payload: dict[str, Any]) -> bool:
    return ((payload.get("mail_settings") or {}).get("sandbox_mode") or {}).get("enable") is True


def _recipients(payload: dict[str, Any]) -> Iterator[tuple[str, int, str]]:
    """(lower-cased address, personalization index, role) for each recipient of a valid body."""
    for i, p in enumerate(payload["personalizations"]):
        for role in ROLES:
            for entry in p.get(role) or ():
                yield entry["email"].lower(), i, role


def _errors_body(message: str) -> bytes:
    return json.dumps({"errors": [{"field": None, "message": message, "help": None}]}).encode()


def allow_localhost_without_proxy() -> None:
    """urllib honours *_proxy variables; a proxy must never see (or eat) calls to the fake."""
    for var in ("NO_PROXY", "no_proxy"):
        hosts = [h for h in os.environ.get(var, "").split(",") if h]
        missing = [h for h in ("127.0.0.1", "localhost") if h not in hosts]
        os.environ[var] = ",".join(hosts + missing)


class FakeSendGrid:
    """An in-process SendGrid v3 Mail Send server with records and fault injection."""

    def __init__(
        self, api_key: str = "SG.fake-key.for-tests", host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.port = port
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self.sandboxed: list[dict[str, Any]] = []
        self.request_count = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        # Set to drop every request still waiting on latency or a hang; replaced by reset().
        self._abandon = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.clear_records()
        self._clear_faults()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeSendGrid:
        allow_localhost_without_proxy()
        self._abandon = threading.Event()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits up to one poll; keep teardown quick
            name=f"fake-sendgrid-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still waiting on latency or a hang are dropped unanswered."""
        self._abandon.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- records and faults -------------------------------------------------------------------

    def reset(self) -> None:
        """Clear every record and injected fault (latency included).

        Requests still waiting on latency or a hang are dropped unanswered, so that one test's
        slow request cannot land in the next test's records.
        """
        with self._lock:
            self._abandon.set()
            self._abandon = threading.Event()
        self.clear_records()
        self._clear_faults()

    def clear_records(self) -> None:
        """Forget what was received but keep the faults (what POST /_fake/reset does)."""
        with self._lock:
            # Cleared in place so a test holding `fake.accepted` sees the reset too.
            self.accepted.clear()
            self.rejected.clear()
            self.sandboxed.clear()
            self.request_count = 0
            self._counts: collections.Counter[str] = collections.Counter()
            self._index: dict[str, list[tuple[dict[str, Any], int, str]]] = {}
            self._total = 0

    def _clear_faults(self) -> None:
        with self._lock:
            self._latency = 0.0
            self._fail_queue: collections.deque[tuple[int, float]] = collections.deque()
            self._ratio = 0.0
            self._ratio_statuses: tuple[int, ...] = ()
            self._ratio_reset_in = 1.0
            self._rng = random.Random(0)
            self._hangs: collections.deque[float] = collections.deque()

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = seconds

    def fail_next(self, n: int, status: int = 429, reset_in: float = 1.0) -> None:
        with self._lock:
            self._fail_queue.extend([(status, reset_in)] * n)

    def fail_ratio(
        self,
        ratio: float,
        statuses: tuple[int, ...] = (429, 500, 503),
        seed: int = 0,
        reset_in: float = 1.0,
    ) -> None:
        """Fail each later request with probability `ratio`; seeded, so a run can be replayed."""
        with self._lock:
            self._ratio = ratio
            self._ratio_statuses = tuple(statuses)
            self._ratio_reset_in = reset_in
            self._rng = random.Random(seed)

    def hang_next(self, n: int, seconds: float) -> None:
        with self._lock:
            self._hangs.extend([seconds] * n)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled (a timed-out one may still be accepted)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    # --- inspection ---------------------------------------------------------------------------

    def recipient_counts(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self._counts)

    def total_recipients(self) -> int:
        with self._lock:
            return self._total

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self.request_count,
                "accepted_requests": len(self.accepted),
                "rejected_requests": len(self.rejected),
                "sandboxed_requests": len(self.sandboxed),
                "recipients": self._total,
                "unique_recipients": len(self._counts),
                "duplicates": self._total - len(self._counts),
            }

    def messages_for(self, email: str) -> list[dict[str, Any]]:
        """What `email` received, one dict per accepted personalization that names it."""
        with self._lock:
            hits = list(self._index.get(email.lower(), ()))
        return [_merged(record, i, role) for record, i, role in hits]

    # --- request handling (called from handler threads) ---------------------------------------

    def _begin(self) -> tuple[float, threading.Event]:
        with self._lock:
            self.request_count += 1
            self._in_flight += 1
            hang = self._hangs.popleft() if self._hangs else 0.0
            return self._latency + hang, self._abandon

    def _end(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _injected_fault(self) -> tuple[int, float] | None:
        with self._lock:
            if self._fail_queue:
                return self._fail_queue.popleft()
            if self._ratio > 0 and self._rng.random() < self._ratio:
                return self._rng.choice(self._ratio_statuses), self._ratio_reset_in
            return None

    def _reject(self, status: int, body: bytes, payload: Any, injected: bool = False) -> None:
        with self._lock:
            self.rejected.append(
                {"status": status, "body": body, "payload_or_raw": payload, "injected": injected}
            )

    def _accept(self, payload: dict[str, Any]) -> str:
        message_id = secrets.token_urlsafe(16)  # 22 url-safe characters, like SendGrid's ids
        record = {"message_id": message_id, "payload": payload, "received_at": time.time()}
        recipients = list(_recipients(payload))
        with self._lock:
            self.accepted.append(record)
            for address, i, role in recipients:
                self._counts[address] += 1
                self._index.setdefault(address, []).append((record, i, role))
            self._total += len(recipients)
        return message_id

    def _sandbox(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self.sandboxed.append({"payload": payload, "received_at": time.time()})


def _merged(record: dict[str, Any], i: int, role: str) -> dict[str, Any]:
    """One recipient's view: the personalization's fields over the message-level ones."""
    message = record["payload"]
    p = message["personalizations"][i]
    return {
        "message_id": record["message_id"],
        "received_at": record["received_at"],
        "role": role,
        "to": p.get("to", []),
        "cc": p.get("cc", []),
        "bcc": p.get("bcc", []),
        "from": p.get("from", message.get("from")),
        "reply_to": message.get("reply_to"),
        "reply_to_list": message.get("reply_to_list"),
        "subject": p.get("subject", message.get("subject")),
        "content": message.get("content", []),
        "custom_args": {**message.get("custom_args", {}), **p.get("custom_args", {})},
        "headers": {**message.get("headers", {}), **p.get("headers", {})},
        "categories": message.get("categories", []),
        "send_at": p.get("send_at", message.get("send_at")),
        "template_id": message.get("template_id"),
        "dynamic_template_data": p.get("dynamic_template_data"),
        "substitutions": p.get("substitutions"),
        "attachments": message.get("attachments", []),
        "asm": message.get("asm"),
        "mail_settings": message.get("mail_settings"),
        "tracking_settings": message.get("tracking_settings"),
        "batch_id": message.get("batch_id"),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSendGrid

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads idling on keep-alive connections so stop() leaves none behind."""
        with self._connections_lock:
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed by the client

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is a scenario under test, not a server bug.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


_TOO_LARGE = object()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSendGrid/1.0"
    timeout = 60  # an idle keep-alive connection must not pin a thread forever
    server: _Server

    def version_string(self) -> str:
        return self.server_version  # the real API says just `nginx`; no Python version here

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests assert on the records; per-request log lines would only be noise

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_POST

    def _dispatch(self) -> None:
        fake = self.server.fake
        path = urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        if path.startswith("/_fake/"):
            self._control(fake, path)
            return
        delay, abandon = fake._begin()
        try:
            if delay and abandon.wait(delay):
                self.close_connection = True  # reset() or stop(): drop it unanswered
                return
            self._api(fake, path, body)
        finally:
            fake._end()

    def _read_body(self) -> bytes | object | None:
        """The request body, _TOO_LARGE past the 30 MB limit, or None when already answered."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._respond(HTTPStatus.LENGTH_REQUIRED, _errors_body("Content-Length is required"))
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._respond(HTTPStatus.BAD_REQUEST, _errors_body("invalid Content-Length"))
            return None
        if length <= MAX_BODY_BYTES:
            return self.rfile.read(length)
        left = min(length, DRAIN_LIMIT)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            left -= len(chunk)
        if length > DRAIN_LIMIT:
            self.close_connection = True
        return _TOO_LARGE

    def _control(self, fake: FakeSendGrid, path: str) -> None:
        if path == "/_fake/stats" and self.command == "GET":
            self._respond(HTTPStatus.OK, json.dumps(fake.stats()).encode())
        elif path == "/_fake/reset" and self.command == "POST":
            # Records only: a standalone server's faults come from its command line and must
            # survive the reset a benchmark does between runs.
            fake.clear_records()
            self._respond(HTTPStatus.OK, b'{"reset": true}')
        else:
            self._respond(HTTPStatus.NOT_FOUND, _errors_body("not found"))

    def _api(self, fake: FakeSendGrid, path: str, body: bytes | object) -> None:
        raw = None if body is _TOO_LARGE else body
        if path != MAIL_SEND_PATH:
            self._fail(fake, HTTPStatus.NOT_FOUND, _errors_body("not found"), raw)
            return
        if self.command != "POST":
            self._fail(fake, HTTPStatus.METHOD_NOT_ALLOWED, _errors_body("method not allowed"), raw)
            return
        fault = fake._injected_fault()
        if fault is not None:
            self._inject(fake, *fault, raw=raw)
            return
        if raw is None:
            self._fail(
                fake, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _errors_body("content too large"), None
            )
            return
        auth = self.headers.get("Authorization")
        if auth is None:
            self._fail(fake, HTTPStatus.UNAUTHORIZED, _errors_body("authorization required"), raw)
            return
        if auth != f"Bearer {fake.api_key}":
            # 401 rather than 403: 403 "access forbidden" means a valid key lacking the
            # mail.send scope, which this fake has no notion of.
            message = "The provided authorization grant is invalid, expired, or revoked"
            self._fail(fake, HTTPStatus.UNAUTHORIZED, _errors_body(message), raw)
            return
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            message = f"Content-Type must be application/json, not {content_type or 'missing'}"
            self._fail(fake, HTTPStatus.BAD_REQUEST, _errors_body(message), raw)
            return
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            message = f"The request body is not valid JSON: {exc}"
            self._fail(fake, HTTPStatus.BAD_REQUEST, _errors_body(message), raw)
            return
        errors = validate_mail(payload)
        if errors:
            self._fail(
                fake, HTTPStatus.BAD_REQUEST, json.dumps({"errors": errors}).encode(), payload
            )
        elif _is_sandbox(payload):
            fake._sandbox(payload)
            self._respond(HTTPStatus.OK, b"", "text/plain")  # delivers nothing, so no message id
        else:
            message_id = fake._accept(payload)
            self._respond(HTTPStatus.ACCEPTED, b"", "text/plain", {"X-Message-Id": message_id})

    def _inject(self, fake: FakeSendGrid, status: int, reset_in: float, raw: bytes | None) -> None:
        headers = {}
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            message = "too many requests"
            headers = {
                "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(math.ceil(time.time() + reset_in)),
            }
        elif status == HTTPStatus.INTERNAL_SERVER_ERROR:
            message = "internal error"
        else:
            message = HTTPStatus(status).phrase.lower()
        self._fail(fake, status, _errors_body(message), raw, headers, injected=True)

    def _fail(
        self,
        fake: FakeSendGrid,
        status: int,
        body: bytes,
        payload: Any,
        headers: dict[str, str] | None = None,
        injected: bool = False,
    ) -> None:
        if isinstance(payload, bytes):
            try:
                payload = json.loads(payload)
            except ValueError:
                pass  # kept raw: the record says what was actually sent
        fake._reject(status, body, payload, injected)
        self._respond(status, body, "application/json", headers)

    def _respond(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client gave up (timeout): nothing to answer


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGINT/SIGTERM, for benchmarks and manual runs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--api-key", default="SG.fake-key.for-tests")
    parser.add_argument("--fail-ratio", type=float, default=0.0, help="share of 429/500/503")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    fake = FakeSendGrid(api_key=args.api_key, host=args.host, port=args.port)
    fake.set_latency(args.latency)
    if args.fail_ratio:
        fake.fail_ratio(args.fail_ratio, seed=args.seed)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fake.start()
    print(fake.url, flush=True)  # first line of stdout: scripts read the (maybe random) port here
    while not stop.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
