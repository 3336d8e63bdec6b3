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
# gthread, two processes per vCPU with 8 threads each: the shape `make bench-pending` measures.
# A process writes the API decisions that overlap in it as one batch (notifier/groupcommit.py);
# with 4 threads the batches were too small to pay, and 2 processes × 8 threads had a 2–3× worse
# pending p99 (more threads queue on one GIL). gunicorn reads WEB_CONCURRENCY as its process
# count: set it to twice the machine's vCPUs. Each process keeps its own pending cache.
ENV WEB_CONCURRENCY=4
CMD ["gunicorn", "--worker-class", "gthread", "--threads", "8", \
     "--bind", "0.0.0.0:8000", "--access-logfile", "-", "notifier:create_app()"]
