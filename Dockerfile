# novita-manager: multi-stage build. The builder turns the project and its dependencies into
# wheels; the runtime image installs only those wheels (no compilers, no pip cache) and runs as
# an unprivileged user. Data (the SQLite file) lives in the /data volume.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip wheel --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/novita-manager.db \
    PORT=3000
RUN groupadd --system --gid 10001 novita \
    && useradd --system --uid 10001 --gid novita --home-dir /data --shell /usr/sbin/nologin novita \
    && mkdir -p /data && chown novita:novita /data
COPY --from=builder /wheels /wheels
RUN pip install --no-index --find-links=/wheels novita-manager && rm -rf /wheels
USER novita
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
# Liveness only (the process answers HTTP); /health and /health/ready carry the real checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '3000'), timeout=4)"]
# Binds all interfaces inside the container; set API_KEYS before publishing the port beyond localhost.
CMD ["novita-manager", "serve", "--host", "0.0.0.0"]
