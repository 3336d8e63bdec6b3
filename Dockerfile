# Production image: the web app (gunicorn) and the worker run from the same image.
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
# No --preload: every gunicorn worker opens its own database pool after the fork.
# gthread, one process per vCPU with 16 threads each: the shape `make bench-pending` measures.
# A process writes the API decisions that overlap in it as one batch (notifier/groupcommit.py):
# fewer, busier processes make bigger batches, and on 2 vCPUs an acceptance cost a third less
# CPU than with 4 processes × 8 threads, the pending figures no worse (BENCHMARKS_pending.md).
# gunicorn reads WEB_CONCURRENCY as its process count: set it to the machine's vCPUs. Each
# process keeps its own pending cache.
ENV WEB_CONCURRENCY=2
CMD ["gunicorn", "--worker-class", "gthread", "--threads", "16", \
     "--bind", "0.0.0.0:8000", "--access-logfile", "-", "notifier:create_app()"]
