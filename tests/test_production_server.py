"""The production web server, started exactly as the image starts it (the Dockerfile's CMD).

Two granian worker processes against the test database: the app loads in each, each opens its
own pools and pending cache, request bodies reach the app (and an oversized one is refused
before it is sent), and SIGTERM stops everything cleanly.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from acceptance_helpers import publish_version

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _image_argv_and_env() -> tuple[list[str], dict[str, str]]:
    cmd = re.search(r"^CMD (\[.*?\])", DOCKERFILE, flags=re.M | re.S).group(1)
    argv = yaml.safe_load(cmd.replace("\\\n", ""))
    env = {}
    for line in re.findall(r"^ENV (.+)$", DOCKERFILE.replace("\\\n", " "), flags=re.M):
        env |= dict(item.split("=", 1) for item in line.split())
    return argv, env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(app, tmp_path):
    argv, image_env = _image_argv_and_env()
    port = _free_port()
    # The image's command with this machine's paths: the virtualenv's granian, a free port.
    argv = [str(Path(sys.executable).with_name(argv[0])), *argv[1:]]
    argv[argv.index("--host") + 1] = "127.0.0.1"
    argv[argv.index("--port") + 1] = str(port)
    env = (
        os.environ
        | image_env
        | {
            "DATABASE_URL": app.config["DATABASE_URL"],
            "REDIS_URL": app.config["REDIS_URL"],
            "SECRET_KEY": "test-secret",
            "NOTIFIER_DATA_DIR": str(tmp_path),
            # Each answer waits for the notifications committed so far: what one worker wrote
            # is what the other answers at once.
            "PENDING_CACHE_STRICT": "true",
        }
    )
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    workers = int(image_env["GRANIAN_WORKERS"])
    for _ in range(150):
        started = len(re.findall(r"Started worker-\d+", (tmp_path / "server.log").read_text()))
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            if started == workers:
                break
        except OSError:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the server did not start: " + (tmp_path / "server.log").read_text())
    yield {"base": base, "port": port, "proc": proc, "log": tmp_path / "server.log"}
    if proc.poll() is None:
        proc.terminate()
        proc.wait(30)
    log.close()


def _call(base: str, method: str, path: str, key: str, body: dict | None = None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.load(error), error.headers


def test_the_image_command_serves_the_api_with_two_processes(server, app, api_key):
    version = publish_version(app)
    base = server["base"]
    status, user, headers = _call(
        base, "PUT", "/api/v1/users/srv-1", api_key, {"email": "srv-1@example.com"}
    )
    assert status == 201, user
    assert headers["X-Content-Type-Options"] == "nosniff"
    # Many requests over fresh connections reach both processes; each answers from its own
    # pools and cache, and every one sees the user and the version.
    for _ in range(20):
        status, body, _ = _call(base, "GET", "/api/v1/users/srv-1/pending", api_key)
        assert status == 200, body
        assert [item["version_uid"] for item in body["pending"]] == [str(version.uid)]
    accept = {"version_uid": str(version.uid), "ip": "203.0.113.9", "user_agent": "srv/1"}
    status, first, _ = _call(base, "POST", "/api/v1/users/srv-1/acceptances", api_key, accept)
    assert status == 201, first
    status, again, _ = _call(base, "POST", "/api/v1/users/srv-1/acceptances", api_key, accept)
    assert (status, again["id"]) == (200, first["id"])
    for _ in range(10):
        status, body, _ = _call(base, "GET", "/api/v1/users/srv-1/pending", api_key)
        assert (status, body["pending"]) == (200, [])
    status, body, _ = _call(base, "POST", "/api/v1/users/srv-1/acceptances", api_key, {})
    assert status == 422 and "version_uid" in body["fields"], body
    pids = {
        int(line.rsplit(" ", 1)[1])
        for line in server["log"].read_text().splitlines()
        if re.search(r"Spawning worker-\d+ with PID: \d+$", line)
    }
    assert len(pids) == 2, server["log"].read_text()


def test_an_oversized_body_is_refused_before_it_is_sent(server, api_key):
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=10) as s:
        s.sendall(
            b"POST /api/v1/users/bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {api_key}\r\n".encode()
            + b"Content-Length: 1000000000\r\n\r\n["
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(4096)
            assert chunk, answer
            answer += chunk
    head, body = answer.decode().split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 413 "), head
    assert json.loads(body)["error"] == "request_entity_too_large", body


def test_sigterm_stops_every_process(server):
    proc = server["proc"]
    children = _children(proc.pid)
    assert len(children) >= 2, children
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, server["log"].read_text()
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]


def test_a_worker_that_dies_is_replaced(server):
    proc = server["proc"]
    first = _children(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _children(proc.pid)
        if len(now) == len(first) and first[0] not in now:
            break
        time.sleep(0.2)
    assert len(now) == len(first) and first[0] not in now, (first, now)
    for _ in range(10):
        with urllib.request.urlopen(server["base"] + "/healthz", timeout=5) as response:
            assert response.status == 200
    assert proc.poll() is None


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue
    return found
