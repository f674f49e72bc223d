# clv-service image: the README's install command (make install, with constraints.txt), then the
# README's production start: migrate, serve. Runs as a non-root user.
#
#   docker build -t clv-service .
#   docker build --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu -t clv-service .
#       (the second takes PyTorch's CPU build of torch 2.13.0 instead of PyPI's CUDA build)
#   docker run -p 8000:8000 -e CLV_DATABASE_URL=postgresql+psycopg://... -e CLV_PII_SECRET=... clv-service
FROM python:3.11-slim

ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN apt-get update \
    && apt-get install --yes --no-install-recommends make curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 clv \
    && mkdir -p /app /data \
    && chown clv:clv /app /data

WORKDIR /app
USER clv
COPY --chown=clv:clv pyproject.toml constraints.txt Makefile README.md alembic.ini ./
COPY --chown=clv:clv service ./service
COPY --chown=clv:clv migrations ./migrations
RUN make install EXTRAS=

ENV PATH=/app/.venv/bin:$PATH \
    CLV_ENVIRONMENT=production \
    CLV_DATABASE_URL=sqlite:////data/clv.db \
    CLV_MODEL_DIR=/data/models
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["sh", "-c", "clv db upgrade && exec clv serve --host 0.0.0.0 --port 8000"]
