# Sonance: slim, non-root image. Build: docker build -t sonance .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY core ./core
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SONANCE_DATA_DIR=/data SONANCE_WEB_PORT=8080 \
    DATABASE_URL=sqlite+aiosqlite:////data/sonance.db
COPY --from=build /install /usr/local
RUN useradd --create-home --uid 10001 sonance && mkdir -p /data && chown sonance /data
USER sonance
WORKDIR /home/sonance
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os,urllib.request,sys; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"SONANCE_WEB_PORT\",\"8080\")}/healthz', timeout=4); sys.exit(0)" || exit 1
ENTRYPOINT ["sonance"]
CMD ["run"]
