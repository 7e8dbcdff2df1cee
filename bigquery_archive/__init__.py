"""The long-term archive in BigQuery: table layout, idempotent loads, replay into InfluxDB."""
