# The growthwatch image: the exporters service (and every other growthwatch command).
FROM python:3.11-slim-bookworm
WORKDIR /app
# the board report's PDF renderer (WeasyPrint) needs pango and a font
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-inter \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY growthwatch ./growthwatch
COPY exporters ./exporters
COPY detectors ./detectors
COPY bigquery_archive ./bigquery_archive
COPY dashboards ./dashboards
COPY reports ./reports
RUN pip install --no-cache-dir .
RUN useradd --system --uid 10001 growthwatch && mkdir -p /data && chown growthwatch /data
USER growthwatch
ENTRYPOINT ["growthwatch"]
CMD ["--help"]
