"""The fake SendGrid enforces the Mail Send contract, seen through the real sendgrid client."""

from __future__ import annotations

import json
import os
import signal
import string
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import URLError

import pytest
from fake_sendgrid import FakeSendGrid, allow_localhost_without_proxy
from python_http_client.exceptions import (
    BadRequestsError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Bcc, Category, Cc, CustomArg, Mail, Personalization, To

FAKE_MODULE = Path(__file__).with_name("fake_sendgrid.py")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSendGrid) -> Iterator[FakeSendGrid]:
    server.reset()
    yield server
    # A request left hanging by one test must not land in the next test's records.
    server.reset()
    assert server.wait_idle(5)
    server.reset()


def sendgrid_client(
    fake: FakeSendGrid, api_key: str | None = None, timeout: float = 5
) -> SendGridAPIClient:
    """A client of its own: sendgrid's shared header dict makes sharing one unsafe."""
    sg = SendGridAPIClient(api_key or fake.api_key, host=fake.url)
    sg.client.timeout = timeout  # sendgrid-python has no default timeout
    return sg


def body(**overrides: Any) -> dict[str, Any]:
    """A minimal valid Mail Send body; keyword arguments replace or (None) remove fields."""
    message: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "ann@example.com", "name": "Ann"}]}],
        "from": {"email": "legal@example.com", "name": "Legal"},
        "subject": "Our privacy policy changes on 1 March",
        "content": [
            {"type": "text/plain", "value": "We changed the policy."},
            {"type": "text/html", "value": "<p>We changed the policy.</p>"},
        ],
    }
    for key, value in overrides.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return message


def to(*emails: str) -> list[dict[str, str]]:
    return [{"email": e} for e in emails]


def errors_of(exc: pytest.ExceptionInfo[Any]) -> list[dict[str, Any]]:
    return json.loads(exc.value.body)["errors"]


def test_send_returns_202_with_message_id(fake: FakeSendGrid) -> None:
    mail = Mail(
        from_email="legal@example.com",
        to_emails="Ann@Example.com",
        subject="Policy update",
        plain_text_content="text",
        html_content="<p>html</p>",
    )
    response = sendgrid_client(fake).send(mail)

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22
    assert set(message_id) <= set(string.ascii_letters + string.digits + "-_")
    assert response.headers["Content-Type"] == "text/plain"
    assert response.headers["Content-Length"] == "0"
    assert [r["message_id"] for r in fake.accepted] == [message_id]
    assert fake.accepted[0]["payload"] == mail.get()
    assert fake.recipient_counts() == {"ann@example.com": 1}
    assert fake.request_count == 1


def test_counts_every_recipient_case_insensitively(fake: FakeSendGrid) -> None:
    mail = Mail(from_email="legal@example.com", subject="s", plain_text_content="t")
    first = Personalization()
    first.add_to(To("ann@example.com"))
    first.add_cc(Cc("bob@example.com"))
    first.add_bcc(Bcc("cat@example.com"))
    second = Personalization()
    second.add_to(To("dan@example.com"))
    mail.add_personalization(first)
    mail.add_personalization(second)
    sg = sendgrid_client(fake)
    sg.send(mail)
    sg.send(body(personalizations=[{"to": to("ANN@example.com")}]))

    assert fake.recipient_counts() == {
        "ann@example.com": 2,
        "bob@example.com": 1,
        "cat@example.com": 1,
        "dan@example.com": 1,
    }
    assert fake.total_recipients() == 5
    assert fake.stats() == {
        "requests": 2,
        "accepted_requests": 2,
        "rejected_requests": 0,
        "sandboxed_requests": 0,
        "recipients": 5,
        "unique_recipients": 4,
        "duplicates": 1,
    }


def test_messages_for_merges_personalization_over_message(fake: FakeSendGrid) -> None:
    mail = Mail(
        from_email="legal@example.com",
        subject="Message subject",
        plain_text_content="text",
        html_content="<p>html</p>",
    )
    mail.custom_arg = [CustomArg("notice_id", "7"), CustomArg("kind", "policy")]
    mail.category = [Category("policy-notice")]
    mail.reply_to = "privacy@example.com"
    own = Personalization()
    own.add_to(To("ann@example.com", "Ann"))
    own.subject = "Ann's own subject"
    own.add_custom_arg(CustomArg("delivery_id", "101"))
    own.add_custom_arg(CustomArg("kind", "policy-ann"))
    shared = Personalization()
    shared.add_to(To("bob@example.com"))
    shared.add_cc(Cc("cat@example.com"))
    shared.add_custom_arg(CustomArg("delivery_id", "102"))
    mail.add_personalization(own)
    mail.add_personalization(shared)
    sg = sendgrid_client(fake)
    first = sg.send(mail)
    # An address may appear once per request, so Ann's cc copy comes in a second request.
    second = sg.send(
        body(personalizations=[{"to": to("dan@example.com"), "cc": to("Ann@example.com")}])
    )

    ann = fake.messages_for("ANN@example.com")
    assert [m["message_id"] for m in ann] == [
        first.headers["X-Message-Id"],
        second.headers["X-Message-Id"],
    ]
    assert ann[0]["role"] == "to"
    assert ann[0]["to"] == [{"email": "ann@example.com", "name": "Ann"}]
    assert ann[0]["subject"] == "Ann's own subject"
    assert ann[0]["custom_args"] == {"notice_id": "7", "kind": "policy-ann", "delivery_id": "101"}
    assert ann[0]["categories"] == ["policy-notice"]
    assert ann[0]["from"] == {"email": "legal@example.com"}
    assert ann[0]["reply_to"] == {"email": "privacy@example.com"}
    assert ann[0]["content"] == [
        {"type": "text/plain", "value": "text"},
        {"type": "text/html", "value": "<p>html</p>"},
    ]
    assert ann[1]["role"] == "cc"
    assert ann[1]["to"] == [{"email": "dan@example.com"}]
    assert ann[1]["subject"] == "Our privacy policy changes on 1 March"
    assert ann[1]["custom_args"] == {}

    [cat] = fake.messages_for("cat@example.com")
    assert cat["role"] == "cc" and cat["subject"] == "Message subject"
    assert cat["custom_args"] == {"notice_id": "7", "kind": "policy", "delivery_id": "102"}
    assert fake.messages_for("bob@example.com")[0]["message_id"] == first.headers["X-Message-Id"]
    assert fake.messages_for("nobody@example.com") == []


def test_missing_authorization_is_401(fake: FakeSendGrid) -> None:
    sg = sendgrid_client(fake)
    del sg.client.request_headers["Authorization"]
    with pytest.raises(UnauthorizedError) as exc:
        sg.send(body())
    assert errors_of(exc) == [{"field": None, "message": "authorization required", "help": None}]
    assert fake.accepted == []


def test_wrong_api_key_is_401(fake: FakeSendGrid) -> None:
    with pytest.raises(UnauthorizedError) as exc:
        sendgrid_client(fake, api_key="SG.someone-else.key").send(body())
    assert "invalid" in errors_of(exc)[0]["message"]
    assert fake.rejected[0]["status"] == 401


def test_body_that_is_not_json_is_400(fake: FakeSendGrid) -> None:
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).client.mail.send.post(
            request_body="hello", request_headers={"Content-Type": "text/plain"}
        )
    assert "application/json" in errors_of(exc)[0]["message"]

    # A Content-Type other than exactly "application/json" makes the client send the str as is.
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).client.mail.send.post(
            request_body='{"personalizations": [',
            request_headers={"Content-Type": "application/json; charset=utf-8"},
        )
    assert "not valid JSON" in errors_of(exc)[0]["message"]
    assert fake.rejected[-1]["payload_or_raw"] == b'{"personalizations": ['

    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).client.mail.send.post(request_body=["a", "list"])
    assert errors_of(exc)[0]["message"] == "The request body must be a JSON object."


def test_body_over_30_mb_is_413(fake: FakeSendGrid) -> None:
    huge = body(content=[{"type": "text/plain", "value": "x" * (30 * 1024 * 1024)}])
    with pytest.raises(PayloadTooLargeError) as exc:
        sendgrid_client(fake).send(huge)
    assert errors_of(exc)[0]["message"] == "content too large"
    assert fake.accepted == []
    # Just under the limit is fine.
    sendgrid_client(fake).send(
        body(content=[{"type": "text/plain", "value": "x" * (29 * 1024 * 1024)}])
    )
    assert len(fake.accepted) == 1


def _many(n: int) -> list[dict[str, Any]]:
    return [{"to": to(f"user{i}@example.com")} for i in range(n)]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"personalizations": None}, "personalizations", "required"),
        ({"personalizations": []}, "personalizations", "at least one"),
        ({"personalizations": _many(1001)}, "personalizations", "at most 1000 personalizations"),
        (
            {"personalizations": [{"to": to(*(f"u{i}@x.org" for i in range(1001)))}]},
            "personalizations",
            "at most 1000 recipients",
        ),
        ({"personalizations": [{"cc": to("a@example.com")}]}, "personalizations.0.to", "to array"),
        ({"personalizations": [{"to": []}]}, "personalizations.0.to", "to array"),
        (
            {"personalizations": [{"to": to("not-an-address")}]},
            "personalizations.0.to.0.email",
            "valid",
        ),
        (
            {"personalizations": [{"to": [{"email": "a@example.com", "name": "Doe, Ann"}]}]},
            "personalizations.0.to.0.name",
            "';' or ','",
        ),
        (
            {"personalizations": [{"to": [{"email": "a@example.com", "name": "Ann; CEO"}]}]},
            "personalizations.0.to.0.name",
            "';' or ','",
        ),
        ({"from": None}, "from", "must be provided"),
        ({"from": {"email": "legal@"}}, "from.email", "valid"),
        ({"from": {"email": "legal@example.com", "name": "Jürgen"}}, "from", "Unicode"),
        ({"subject": None}, "subject", "required"),
        ({"subject": ""}, "subject", "at least one character"),
        ({"content": None}, "content", "content is required"),
        ({"content": []}, "content", "non-empty"),
        ({"content": [{"type": "text/plain", "value": ""}]}, "content.0.value", "one character"),
        (
            {
                "content": [
                    {"type": "text/html", "value": "<p>x</p>"},
                    {"type": "text/plain", "value": "x"},
                ]
            },
            "content",
            "text/plain and text/html must come first",
        ),
        (
            {
                "content": [
                    {"type": "text/plain", "value": "x"},
                    {"type": "text/plain", "value": "y"},
                ]
            },
            "content.1.type",
            "only once",
        ),
        ({"custom_args": {"notice_id": 7}}, "custom_args.notice_id", "strings"),
        ({"custom_args": {"pad": "x" * 10_000}}, "custom_args", "under 10000 bytes"),
        ({"categories": [f"c{i}" for i in range(11)]}, "categories", "At most 10"),
        ({"categories": ["policy", "policy"]}, "categories.1", "unique"),
        ({"categories": ["x" * 256]}, "categories.0", "1 to 255"),
        (
            {"reply_to": {"email": "a@example.com"}, "reply_to_list": to("b@example.com")},
            "reply_to",
            "cannot both",
        ),
        ({"send_at": int(time.time()) + 73 * 3600}, "send_at", "72 hours"),
        ({"send_at": "tomorrow"}, "send_at", "integer"),
        (
            {"mail_settings": {"sandbox_mode": {"enable": "true"}}},
            "mail_settings.sandbox_mode.enable",
            "boolean",
        ),
        ({"headers": {"Reply-To": "x@example.com"}}, "headers.Reply-To", "reserved"),
    ],
)
def test_contract_violation_is_400_naming_the_field(
    fake: FakeSendGrid, overrides: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).send(body(**overrides))
    errors = errors_of(exc)
    assert any(e["field"] == field and words in e["message"] for e in errors), errors
    assert all(set(e) == {"field", "message", "help"} for e in errors)
    assert fake.accepted == [] and fake.total_recipients() == 0
    assert [r["status"] for r in fake.rejected] == [400]


def test_errors_accumulate(fake: FakeSendGrid) -> None:
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).send(
            body(**{"from": None, "subject": None, "categories": ["a", "a"]})
        )
    assert {e["field"] for e in errors_of(exc)} == {"from", "subject", "categories.1"}


def test_template_id_makes_subject_and_content_optional(fake: FakeSendGrid) -> None:
    sendgrid_client(fake).send(body(subject=None, content=None, template_id="d-0123456789abcdef"))
    # ...and a subject in every personalization stands in for the message-level one.
    sendgrid_client(fake).send(
        body(subject=None, personalizations=[{"to": to("a@x.org"), "subject": "Hi"}])
    )
    assert len(fake.accepted) == 2


def test_custom_args_limit_applies_per_personalization(fake: FakeSendGrid) -> None:
    args = {"pad": "x" * 4_900}  # 4,910 bytes serialized
    fits = [{"to": to(f"u{i}@example.com"), "custom_args": args} for i in range(3)]
    # 14,730 bytes over the request, but each email carries 9,820: accepted.
    sendgrid_client(fake).send(body(custom_args=args, personalizations=fits))
    too_big = fits + [{"to": to("big@example.com"), "custom_args": {"pad": "x" * 5_100}}]
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).send(body(custom_args=args, personalizations=too_big))
    [error] = errors_of(exc)
    assert error["field"] == "personalizations.3.custom_args"
    assert "10020" in error["message"]
    assert len(fake.accepted) == 1


def test_1000_personalizations_accepted_and_1001_rejected(fake: FakeSendGrid) -> None:
    sendgrid_client(fake).send(body(personalizations=_many(1000)))
    assert fake.total_recipients() == 1000
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).send(body(personalizations=_many(1001)))
    assert {e["field"] for e in errors_of(exc)} == {"personalizations"}
    assert fake.total_recipients() == 1000 and len(fake.accepted) == 1


def test_recipient_limit_spans_to_cc_and_bcc_of_all_personalizations(fake: FakeSendGrid) -> None:
    def batch(n: int) -> list[dict[str, Any]]:
        return [
            {"to": to(f"t{i}@example.com"), "cc": to(f"c{i}@example.com")} for i in range(n // 2)
        ]

    sendgrid_client(fake).send(body(personalizations=batch(1000)))
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).send(
            body(personalizations=batch(1000) + [{"to": to("one@example.com")}])
        )
    assert "1001" in errors_of(exc)[0]["message"]


def test_duplicate_address_in_one_request_is_rejected(fake: FakeSendGrid) -> None:
    personalizations = [
        {"to": to("ann@example.com")},
        {"bcc": to("ANN@example.com"), "to": to("b@x.org")},
    ]
    with pytest.raises(BadRequestsError) as exc:
        sendgrid_client(fake).send(body(personalizations=personalizations))
    [error] = errors_of(exc)
    assert error["field"] == "personalizations.1.bcc.0.email"
    assert "personalizations.0.to.0" in error["message"]
    assert fake.recipient_counts() == {}


def test_unknown_path_is_404_and_other_methods_405(fake: FakeSendGrid) -> None:
    sg = sendgrid_client(fake)
    with pytest.raises(NotFoundError):
        sg.client.mail.sned.post(request_body=body())
    with pytest.raises(MethodNotAllowedError):
        sg.client.mail.send.get()
    with pytest.raises(MethodNotAllowedError):
        sg.client.mail.send.put(request_body=body())
    assert [r["status"] for r in fake.rejected] == [404, 405, 405]
    assert fake.accepted == []


def test_sandbox_mode_answers_200_and_delivers_nothing(fake: FakeSendGrid) -> None:
    response = sendgrid_client(fake).send(body(mail_settings={"sandbox_mode": {"enable": True}}))
    assert response.status_code == 200
    assert fake.accepted == [] and fake.recipient_counts() == {}
    assert len(fake.sandboxed) == 1
    sendgrid_client(fake).send(body(mail_settings={"sandbox_mode": {"enable": False}}))
    assert len(fake.accepted) == 1


def test_injected_429_carries_rate_limit_headers(fake: FakeSendGrid) -> None:
    fake.fail_next(2, status=429, reset_in=30)
    sg = sendgrid_client(fake)
    for _ in range(2):
        with pytest.raises(TooManyRequestsError) as exc:
            sg.send(body())
        # SendGrid sends X-Ratelimit-*; read them case-insensitively as the app must.
        assert exc.value.headers["x-ratelimit-remaining"] == "0"
        assert exc.value.headers["X-RATELIMIT-LIMIT"].isdigit()
        assert 29 <= int(exc.value.headers["X-RateLimit-Reset"]) - time.time() <= 31
        assert errors_of(exc) == [{"field": None, "message": "too many requests", "help": None}]
    assert fake.accepted == [] and fake.total_recipients() == 0

    assert sg.send(body()).status_code == 202
    assert [r["injected"] for r in fake.rejected] == [True, True]
    assert fake.rejected[0]["payload_or_raw"] == body()


def test_injected_5xx_reaches_server_error_exceptions(fake: FakeSendGrid) -> None:
    fake.fail_next(1, status=500)
    fake.fail_next(1, status=503)
    sg = sendgrid_client(fake)
    with pytest.raises(InternalServerError) as exc:
        sg.send(body())
    assert errors_of(exc)[0]["message"] == "internal error"
    with pytest.raises(ServiceUnavailableError) as exc:
        sg.send(body())
    assert errors_of(exc)[0]["message"] == "service unavailable"
    assert fake.total_recipients() == 0
    sg.send(body())
    assert fake.total_recipients() == 1


def _outcomes(fake: FakeSendGrid, n: int) -> list[int]:
    sg = sendgrid_client(fake)
    statuses = []
    for i in range(n):
        try:
            statuses.append(sg.send(body(personalizations=[{"to": to(f"u{i}@x.org")}])).status_code)
        except (TooManyRequestsError, InternalServerError, ServiceUnavailableError) as exc:
            statuses.append(exc.status_code)
    return statuses


def test_fail_ratio_is_seeded_and_replayable(fake: FakeSendGrid) -> None:
    fake.fail_ratio(0.5, seed=7)
    first = _outcomes(fake, 30)
    assert 202 in first and set(first) - {202} <= {429, 500, 503} and set(first) != {202}
    assert fake.total_recipients() == first.count(202)

    fake.reset()
    fake.fail_ratio(0.5, seed=7)
    assert _outcomes(fake, 30) == first

    fake.reset()
    fake.fail_ratio(1.0, statuses=(503,))
    assert _outcomes(fake, 3) == [503, 503, 503]


def test_latency_trips_a_client_timeout_yet_the_send_still_lands(fake: FakeSendGrid) -> None:
    fake.set_latency(0.5)
    started = time.monotonic()
    with pytest.raises((TimeoutError, URLError)):
        sendgrid_client(fake, timeout=0.1).send(body())
    assert time.monotonic() - started < 0.4
    # Like the real API, a request the client gave up on may still be accepted: callers must
    # treat a timeout as "maybe sent".
    assert fake.wait_idle(2)
    assert fake.total_recipients() == 1

    fake.set_latency(0.05)
    assert sendgrid_client(fake, timeout=1).send(body()).status_code == 202


def test_hang_next_delays_only_the_next_requests(fake: FakeSendGrid) -> None:
    fake.hang_next(1, seconds=2)
    with pytest.raises((TimeoutError, URLError)):
        sendgrid_client(fake, timeout=0.2).send(body())
    started = time.monotonic()
    assert sendgrid_client(fake, timeout=0.5).send(body()).status_code == 202
    assert time.monotonic() - started < 0.3
    # reset() drops the hung request unanswered, so it cannot land in a later test's records.
    fake.reset()
    assert fake.wait_idle(1)
    assert fake.accepted == []


def test_concurrent_clients_are_counted_exactly(fake: FakeSendGrid) -> None:
    threads, per_thread = 8, 10
    failures: list[BaseException] = []

    def work(t: int) -> None:
        sg = sendgrid_client(fake)
        try:
            for i in range(per_thread):
                personalizations = [
                    {"to": to(f"t{t}-{i}@example.com")},
                    {"to": to("everyone@example.com")},
                ]
                sg.send(body(personalizations=personalizations))
        except BaseException as exc:  # surfaced below: a thread's exception is otherwise lost
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    assert failures == []
    counts = fake.recipient_counts()
    assert counts["everyone@example.com"] == threads * per_thread
    assert len(counts) == threads * per_thread + 1
    assert fake.total_recipients() == 2 * threads * per_thread
    assert fake.request_count == threads * per_thread
    assert len({r["message_id"] for r in fake.accepted}) == threads * per_thread


def test_reset_clears_records_and_faults(fake: FakeSendGrid) -> None:
    sendgrid_client(fake).send(body())
    fake.fail_next(5)
    fake.set_latency(2)
    fake.reset()
    assert fake.accepted == [] and fake.recipient_counts() == {} and fake.request_count == 0
    assert sendgrid_client(fake, timeout=1).send(body()).status_code == 202


def _open(request: urllib.request.Request | str) -> Any:
    # No proxy handler: a developer's http_proxy must not intercept localhost.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return json.loads(response.read())


def test_standalone_server_serves_stats_and_reset() -> None:
    allow_localhost_without_proxy()  # no in-process FakeSendGrid.start() has done it here
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    command = [sys.executable, str(FAKE_MODULE), "--port", "0", "--api-key", "SG.bench.key"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            sg = SendGridAPIClient("SG.bench.key", host=url)
            sg.client.timeout = 5
            sg.send(body(personalizations=[{"to": to("a@x.org", "b@x.org")}]))
            sg.send(body(personalizations=[{"to": to("A@x.org")}]))
            stranger = SendGridAPIClient("SG.wrong.key", host=url)
            stranger.client.timeout = 5
            with pytest.raises(UnauthorizedError):
                stranger.send(body())

            stats = _open(f"{url}/_fake/stats")
            assert stats["requests"] == 3
            assert stats["accepted_requests"] == 2
            assert stats["recipients"] == 3
            assert stats["unique_recipients"] == 2
            assert stats["duplicates"] == 1

            assert _open(urllib.request.Request(f"{url}/_fake/reset", method="POST")) == {
                "reset": True
            }
            assert _open(f"{url}/_fake/stats")["requests"] == 0
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=5) == 0
