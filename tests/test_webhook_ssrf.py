"""Host webhooks never reach internal addresses: refused on save, and again after DNS at send."""

from __future__ import annotations

import datetime
import html
import ipaddress
import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from acceptance_helpers import accept, publish_version, put_user

from notifier.hostwebhooks import url_problem

# --- fixtures: a local receiver, made-up DNS names, and a guard on outgoing connections -------


def _serve(tls: ssl.SSLContext | None = None) -> SimpleNamespace:
    """A host on 127.0.0.1 that records each request; `answers` holds (status, headers) to give."""
    received, answers = [], []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(SimpleNamespace(path=self.path, headers=self.headers, body=body))
            status, headers = answers.pop(0) if answers else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    return SimpleNamespace(server=server, port=port, base=base, received=received, answers=answers)


@pytest.fixture
def receiver():
    host = _serve()
    yield host
    host.server.shutdown()
    host.server.server_close()


@pytest.fixture
def fake_dns(monkeypatch):
    """Answers for made-up names (`answers[name] = [addresses]`); other names resolve as usual."""
    answers, asked = {}, []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(name)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port or 0, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
            for a in answers[name]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return SimpleNamespace(answers=answers, asked=asked)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Nothing leaves this machine: a connection elsewhere fails the test instead."""
    outside = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        if not ipaddress.ip_address(address[0]).is_loopback:
            outside.append(address)
            raise AssertionError(f"the test tried to connect to {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield
    assert outside == []


def _key_id(db) -> int:
    return db.execute("SELECT id FROM api_keys").fetchone()["id"]


def _save(client, admin, key_id: int, url: str):
    return client.post(
        f"/admin/host/keys/{key_id}",
        data={"csrf_token": admin["csrf"], "allowed_origins": "", "webhook_url": url},
    )


def _accept_once(app, api) -> None:
    version = publish_version(app)
    put_user(api, "u-1")
    assert accept(api, "u-1", version).status_code in (200, 201)


def _work(app) -> None:
    from notifier import queues
    from notifier.workers import AppSimpleWorker

    with app.app_context():
        AppSimpleWorker(["default"], connection=queues.redis_connection(app), app=app).work(
            burst=True
        )


def _registries(app) -> tuple[list[str], list[str]]:
    """(webhook jobs scheduled for a retry, jobs failed for good); sweeps are left out."""
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry

    from notifier import queues

    with app.app_context():
        redis = queues.redis_connection(app)
        return (
            [
                j
                for j in ScheduledJobRegistry("default", connection=redis).get_job_ids()
                if j.startswith("host-webhook-")
            ],
            FailedJobRegistry("default", connection=redis).get_job_ids(),
        )


# --- on save -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9000/hook", "127.0.0.1 is a loopback address"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://0.0.0.0:8000/", "0.0.0.0 is an unspecified address"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1 is a loopback address (127.0.0.1)"),
        ("http://localhost:8080/hook", "localhost is this machine"),
        ("http://LOCALHOST./hook", "localhost is this machine"),
        ("http://admin.localhost/hook", "admin.localhost is this machine"),
        ("http://2130706433/hook", "2130706433 is 127.0.0.1, a loopback address"),
        ("http://0177.0.0.1/hook", "0177.0.0.1 is 127.0.0.1, a loopback address"),
        ("http://100.64.0.1/hook", "100.64.0.1 is a shared (carrier-grade NAT) address"),
        ("https://user:pw@hooks.example.com/hook", "it contains a user name or password"),
        ("ftp://hooks.example.com/hook", "it must start with https://"),
    ],
)
def test_saving_an_internal_webhook_url_is_refused_saying_why(
    app, admin, client, api_key, db, url, reason
):
    response = _save(client, admin, _key_id(db), url)
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert f"The webhook URL was not saved: {reason}" in page.replace("\n", " ")
    assert db.execute("SELECT webhook_url FROM api_key_settings").fetchone()["webhook_url"] is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://0x7f.1/", "0x7f.1 is 127.0.0.1, a loopback address"),
        ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
        ("http://[fc00::1]/", "fc00::1 is a private address"),
        ("http://[fe80::1%25eth0]/", "fe80::1%25eth0 is a link-local address"),
        ("http://[2002:a00:1::]/", "2002:a00:1:: is a private address (10.0.0.1)"),
        (
            "http://[64:ff9b::a9fe:a9fe]/",
            "64:ff9b::a9fe:a9fe is a link-local address (169.254.169.254)",
        ),
        ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
        ("http://hooks example.com/", "'hooks example.com' is not a valid host name"),
        ("http://[::1/", "not a valid URL"),
        ("http:///hook", "it has no host"),
    ],
)
def test_other_internal_forms_are_named(url, reason):
    assert reason in url_problem(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/pn?team=1",
        "https://8.8.8.8/hook",
        "http://[2606:4700::1111]:8443/hook",
        "https://bücher.example/hook",
    ],
)
def test_public_urls_pass(url):
    assert url_problem(url, allow_private=False) is None


def test_a_host_name_is_saved_without_being_resolved(app, admin, client, api_key, db, fake_dns):
    response = _save(client, admin, _key_id(db), "https://hooks.example.com/pn")
    assert response.status_code == 302
    assert fake_dns.asked == []  # nothing to look up yet; the name is judged when sending
    row = db.execute("SELECT webhook_url FROM api_key_settings").fetchone()
    assert row["webhook_url"] == "https://hooks.example.com/pn"


def test_the_flag_allows_local_targets_but_never_credentials(app, admin, client, api_key, db):
    app.config["HOST_WEBHOOK_ALLOW_PRIVATE"] = True
    key_id = _key_id(db)
    assert _save(client, admin, key_id, "http://127.0.0.1:9000/hook").status_code == 302
    assert _save(client, admin, key_id, "http://localhost:9000/hook").status_code == 302
    response = _save(client, admin, key_id, "http://me:secret@127.0.0.1:9000/hook")
    assert response.status_code == 422
    assert "user name or password" in html.unescape(response.get_data(as_text=True))
    row = db.execute("SELECT webhook_url FROM api_key_settings").fetchone()
    assert row["webhook_url"] == "http://localhost:9000/hook"


# --- at send time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "refused"),
    [
        (["10.0.0.5"], "10.0.0.5, a private address"),
        (["127.0.0.1"], "127.0.0.1, a loopback address"),  # where the receiver listens
        # A rebinding answer: one public address is not enough if any other is internal.
        (["93.184.215.14", "169.254.169.254"], "169.254.169.254, a link-local address"),
        (["2606:4700::1111", "::ffff:10.0.0.5"], "::ffff:10.0.0.5, a private address (10.0.0.5)"),
    ],
)
def test_a_name_resolving_to_an_internal_address_is_refused_for_good(
    app, admin, client, api, db, receiver, fake_dns, addresses, refused
):
    fake_dns.answers["hooks.internal.test"] = addresses
    key_id = _key_id(db)
    url = f"http://hooks.internal.test:{receiver.port}/hook"
    assert _save(client, admin, key_id, url).status_code == 302
    _accept_once(app, api)
    _work(app)
    assert receiver.received == []
    row = db.execute("SELECT * FROM host_webhook_events").fetchone()
    message = f"refused: hooks.internal.test resolves to {refused}"
    assert (row["state"], row["attempts"], row["last_error"]) == ("failed", 1, message)
    scheduled, failed = _registries(app)
    assert scheduled == [] and failed == [f"host-webhook-{row['id']}"]  # no retry
    page = html.unescape(client.get(f"/admin/host/keys/{key_id}").get_data(as_text=True))
    assert message in page and "failed" in page


def test_a_url_saved_before_these_rules_is_refused_when_sending(app, api, db, receiver):
    from notifier import db as notifier_db
    from notifier import hostkeys

    with app.app_context(), notifier_db.connection() as conn:
        hostkeys.settings(conn, _key_id(db))
    db.execute("UPDATE api_key_settings SET webhook_url = %s", (f"{receiver.base}/hook",))
    _accept_once(app, api)
    _work(app)
    assert receiver.received == []
    row = db.execute("SELECT * FROM host_webhook_events").fetchone()
    assert (row["state"], row["last_error"]) == (
        "failed",
        "refused: 127.0.0.1 is a loopback address",
    )


def test_with_the_flag_the_vetted_address_is_used_and_the_host_header_kept(
    app, admin, client, api, db, receiver, fake_dns
):
    app.config["HOST_WEBHOOK_ALLOW_PRIVATE"] = True
    fake_dns.answers["pinned.test"] = ["127.0.0.1"]
    response = _save(client, admin, _key_id(db), f"http://pinned.test:{receiver.port}/hook?k=1")
    assert response.status_code == 302
    _accept_once(app, api)
    _work(app)
    [request] = receiver.received
    assert request.path == "/hook?k=1"
    assert request.headers["Host"] == f"pinned.test:{receiver.port}"
    assert json.loads(request.body)["event"] == "acceptance.created"
    assert fake_dns.asked == ["pinned.test"]  # one lookup: the connection used its answer
    row = db.execute("SELECT * FROM host_webhook_events").fetchone()
    assert (row["state"], row["last_status"]) == ("delivered", 200)


def test_redirects_are_not_followed(app, admin, client, api, db, receiver):
    app.config["HOST_WEBHOOK_ALLOW_PRIVATE"] = True
    receiver.answers.append((307, {"Location": f"{receiver.base}/internal"}))
    assert _save(client, admin, _key_id(db), f"{receiver.base}/hook").status_code == 302
    _accept_once(app, api)
    _work(app)
    assert [r.path for r in receiver.received] == ["/hook"]
    row = db.execute("SELECT * FROM host_webhook_events").fetchone()
    assert (row["state"], row["last_status"]) == ("retrying", 307)
    assert row["last_error"] == "HTTP 307 (redirects are not followed)"


# --- https: the certificate is checked against the URL's name, not the pinned address ---------


@pytest.fixture
def tls_receiver(tmp_path, monkeypatch):
    """An https host on 127.0.0.1 whose certificate, from a test CA we trust, names tls.test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, key, issuer, issuer_key, *, ca, names=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("Test CA", ca_key, "Test CA", ca_key, ca=True)
    leaf = cert("tls.test", leaf_key, "Test CA", ca_key, ca=False, names=["tls.test"])
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(
        leaf.public_bytes(pem)
        + leaf_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # read by create_default_context
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(tmp_path / "leaf.pem")
    host = _serve(server_tls)
    yield host
    host.server.shutdown()
    host.server.server_close()


@pytest.mark.parametrize(("name", "delivered"), [("tls.test", True), ("other.test", False)])
def test_https_checks_the_certificate_against_the_name(
    app, admin, client, api, db, tls_receiver, fake_dns, name, delivered
):
    app.config["HOST_WEBHOOK_ALLOW_PRIVATE"] = True
    fake_dns.answers[name] = ["127.0.0.1"]
    response = _save(client, admin, _key_id(db), f"https://{name}:{tls_receiver.port}/hook")
    assert response.status_code == 302
    _accept_once(app, api)
    _work(app)
    row = db.execute("SELECT * FROM host_webhook_events").fetchone()
    if delivered:
        assert row["state"] == "delivered"
        assert tls_receiver.received[0].headers["Host"] == f"tls.test:{tls_receiver.port}"
    else:
        assert row["state"] == "retrying" and tls_receiver.received == []
        assert "certificate" in row["last_error"] and "other.test" in row["last_error"]
