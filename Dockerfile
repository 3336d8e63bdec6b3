# Production image: the web app (granian) and the worker run from the same image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json
WORKDIR /app
RUN useradd --create-home --uid 1000 notifier

COPY pyproject.toml README.md ./
COPY policy_versions ./policy_versions
COPY notifier ./notifier
COPY templates ./templates
COPY worker.py ./
RUN pip install --no-cache-dir .

USER notifier
EXPOSE 8000
# granian (a Rust HTTP server) runs the WSGI app: one process per vCPU, each loading the app
# itself and opening its own pools, with 8 threads for the app. Measured against gunicorn's
# gthread workers on the same machine: a third to half less CPU per request, 1.7x the no-op's
# rate, and a far shorter latency tail (BENCHMARKS_pending.md). 8 threads rather than 16: the
# requests beyond them wait in granian's queue, first come first served, rather than for the
# GIL, which is not; a process still writes the API decisions that overlap in it as one batch
# (notifier/groupcommit.py). Each process keeps its own pending cache. Set GRANIAN_WORKERS to
# the machine's vCPUs.
ENV GRANIAN_WORKERS=2 GRANIAN_BLOCKING_THREADS=8
# On SIGTERM a worker gets 8 s to finish its requests (Docker kills at 10 s); without a limit
# granian waits for ever for a worker that was still starting when the signal came.
CMD ["granian", "--interface", "wsgi", "--factory", "--respawn-failed-workers", \
     "--workers-kill-timeout", "8", "--host", "0.0.0.0", "--port", "8000", \
     "notifier:create_app"]
