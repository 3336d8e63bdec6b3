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
# gthread, two processes per vCPU with 4 threads each: the shape `make bench-pending` measures
# (on its 2 vCPUs, 2 × 8 served as much but its p99 with many keep-alive connections was 2–3×
# worse: more threads queue on one GIL). gunicorn reads WEB_CONCURRENCY as its process count:
# set it to twice the machine's vCPUs. Each process keeps its own pending cache.
ENV WEB_CONCURRENCY=4
CMD ["gunicorn", "--worker-class", "gthread", "--threads", "4", \
     "--bind", "0.0.0.0:8000", "--access-logfile", "-", "notifier:create_app()"]
