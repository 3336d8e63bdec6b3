"""docker-compose.yml, Dockerfile and .env.example agree with each other and with the app.

No Docker engine runs in the test environment, so this checks what can be checked without one:
the services and how they reach each other, what the image contains and runs, and that every
setting the deployment asks for is one the app reads.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
APP_SERVICES = ("migrate", "web", "worker")


def test_services_reach_each_other_by_name_with_matching_credentials():
    services = COMPOSE["services"]
    assert set(services) == {"migrate", "web", "worker", "postgres", "redis"}
    pg_env = services["postgres"]["environment"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        db = urlsplit(env["DATABASE_URL"])
        assert (db.hostname, db.port, db.path.lstrip("/")) == (
            "postgres",
            5432,
            pg_env["POSTGRES_DB"],
        )
        assert (db.username, db.password) == (pg_env["POSTGRES_USER"], pg_env["POSTGRES_PASSWORD"])
        assert urlsplit(env["REDIS_URL"]).hostname == "redis"
        assert services[name]["env_file"] == ".env"


def test_migrations_run_first_and_everything_waits_for_healthy_servers():
    services = COMPOSE["services"]
    assert services["migrate"]["command"] == ["flask", "--app", "notifier", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["worker"]["command"] == ["python", "worker.py"]
    assert (ROOT / "worker.py").is_file()
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
        assert services[name]["volumes"], f"{name} keeps its data in a volume"


def test_image_holds_the_app_and_serves_it_with_granian():
    copied = set()
    for line in re.findall(r"^COPY (.+)$", DOCKERFILE, flags=re.M):
        copied |= set(line.split()[:-1])
    for needed in ("pyproject.toml", "notifier", "policy_versions", "templates", "worker.py"):
        assert needed in copied, needed
        assert (ROOT / needed).exists()
    cmd = re.search(r"^CMD (\[.*?\])", DOCKERFILE, flags=re.M | re.S).group(1)
    argv = yaml.safe_load(cmd.replace("\\\n", ""))
    assert argv[0] == "granian" and argv[-1] == "notifier:create_app"
    assert argv[argv.index("--interface") + 1] == "wsgi" and "--factory" in argv
    assert "--respawn-failed-workers" in argv  # a worker that dies is replaced, as gunicorn does
    # The benchmarked shape, from the environment: processes and the app's threads per process.
    assert "--workers" not in argv and "--blocking-threads" not in argv
    env = r"^ENV GRANIAN_WORKERS=[1-9]\d* GRANIAN_BLOCKING_THREADS=8$"
    assert re.search(env, DOCKERFILE, flags=re.M)
    assert argv[argv.index("--workers-kill-timeout") + 1] == "8"  # under Docker's 10 s
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, flags=re.M)
    # tests/test_production_server.py starts this very command and uses it.


def test_every_setting_in_env_example_is_read_by_the_app():
    config = (ROOT / "notifier" / "config.py").read_text()
    names = [
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert {"SECRET_KEY", "SENDGRID_API_KEY", "MAIL_FROM", "PUBLIC_BASE_URL"} <= set(names)
    for name in names:
        assert f'"{name}"' in config, (
            f"{name} is in .env.example but notifier/config.py never reads it"
        )
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    header = " ".join(line for line in lines if line.startswith("#"))
    for name in ("SECRET_KEY", "SENDGRID_API_KEY", "MAIL_FROM", "PUBLIC_BASE_URL"):
        assert name in header, f"the compose file's instructions do not mention {name}"
