# The growthwatch image: the exporters service (and every other growthwatch command).
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY growthwatch ./growthwatch
COPY exporters ./exporters
COPY detectors ./detectors
COPY bigquery_archive ./bigquery_archive
COPY dashboards ./dashboards
RUN pip install --no-cache-dir .
RUN useradd --system --uid 10001 growthwatch && mkdir -p /data && chown growthwatch /data
USER growthwatch
ENTRYPOINT ["growthwatch"]
CMD ["--help"]
