"""`make run` as a person runs it: embedded servers in a fresh data folder, the demo, the web app
(granian) and a worker; then SIGTERM stops every one of them."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.timeout(240)
def test_make_run_serves_the_demo_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"NOTIFIER_DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
    env |= {"PYTHONUNBUFFERED": "1", "SECRET_KEY": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "notifier.devserver"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout])
    reader.start()
    output: list[str] = []

    def read_until(pattern: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                output.append(lines.get(timeout=0.5))
            except queue.Empty:
                assert proc.poll() is None, "".join(output)
                continue
            if re.search(pattern, output[-1]):
                return
        pytest.fail(f"no {pattern!r} in:\n" + "".join(output))

    try:
        read_until(r"Ctrl-C stops everything", 180)
        banner = "".join(output)
        base = f"http://127.0.0.1:{port}"
        assert f"Policy Notifier is running at {base}" in banner
        assert re.search(r"sign in as \S+@\S+ / \S+\)", banner), banner
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"{base}/policies/privacy", timeout=10) as response:
            assert response.status == 200 and "Privacy" in response.read().decode()
        with urllib.request.urlopen(f"{base}/admin/signin", timeout=10) as response:
            assert 'name="csrf_token"' in response.read().decode()
        running = _descendants(proc.pid)
        assert len(running) >= 3, running  # granian, its worker process, the RQ worker, ...
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    reader.join(10)
    proc.stdout.close()
    while not lines.empty():
        output.append(lines.get())
    assert code == 0 and "Stopped.\n" in output, "".join(output)
    assert "server stopped" in "".join(output[output.index("Stopped.\n") :])  # the embedded PG
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists()], "".join(output)


@pytest.mark.timeout(240)
def test_make_run_says_so_when_its_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env |= {"NOTIFIER_DATA_DIR": str(tmp_path / "data"), "PORT": str(port)}
        done = subprocess.run(
            [sys.executable, "-m", "notifier.devserver"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=200,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Port {port} on 127.0.0.1 is in use (another `make run`?)" in done.stdout
    assert "running at" not in done.stdout
    assert not (tmp_path / "data").exists()  # said before starting anything
