"""The declared schema of ``growthwatch.yaml`` (JSON Schema, draft 2020-12).

One schema, used by ``growthwatch config check`` and by every command that loads a config,
so "the config checker passed" and "the service accepted it" can never disagree. Fields
marked ``"x-secret": true`` must be environment references (``${NAME}``): a secret written
inline in a YAML file ends up in git, and the checker never prints their values.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

ENV_REF = r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$"
DURATION = r"^[0-9]+(s|m|h|d)$"

SECRET: dict[str, Any] = {
    "type": "string",
    "pattern": ENV_REF,
    "x-secret": True,
    "x-hint": "secrets must be environment references like ${STRIPE_API_KEY}",
}
CURRENCY: dict[str, Any] = {"type": "string", "x-currency": True}
DURATION_T: dict[str, Any] = {
    "type": "string",
    "pattern": DURATION,
    "x-hint": "a duration such as 30s, 15m, 6h or 3d",
}
SLUG: dict[str, Any] = {
    "type": "string",
    "pattern": r"^[a-z0-9][a-z0-9_-]{0,62}$",
    "x-hint": "lower-case letters, digits, '-' and '_', starting with a letter or digit",
}


def _source(kind: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    common = {
        "type": {"const": kind},
        "name": SLUG,
        "enabled": {"type": "boolean"},
        "schedule": DURATION_T,
        "lookback": DURATION_T,
        "start_date": {"type": "string", "format": "date"},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["type", *required],
        "properties": {**common, **props},
    }


def source_schemas() -> list[dict[str, Any]]:
    """The schema of every source type, each declared by its stream class.

    Source types live in the exporters (one module each, found by ``exporters.registry``);
    the core names that registry only here, by module name, the way the CLI names its
    command modules, so adding a source never edits the core.
    """
    registry = importlib.import_module("exporters.registry")
    return [
        _source(kind, dict(cls.options), list(cls.required))
        for kind, cls in registry.stream_types().items()
    ]


ALERT_ROUTE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "url"],
    "properties": {
        "name": SLUG,
        "url": {
            **SECRET,
            "x-hint": "an apprise URL kept in an environment variable, e.g. ${SLACK_URL}",
        },
        "min_severity": {"enum": ["info", "warning", "critical"]},
        "products": {"type": "array", "items": SLUG},
    },
}

# The board report (reports/service.py): when `growthwatch serve` sends it and where to.
REPORT: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "day": {
            "type": "integer",
            "minimum": 1,
            "maximum": 28,
            "x-hint": "day of the month the last month's report is sent (1-28)",
        },
        "time": {
            "type": "string",
            "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
            "x-hint": "HH:MM in reporting.timezone, e.g. 06:00",
        },
        "products": {"type": "array", "items": SLUG, "minItems": 1},
        "delivery": {
            "type": "array",
            "items": {
                **SECRET,
                "x-hint": "apprise URLs kept in environment variables, e.g. ${BOARD_MAIL_URL}",
            },
        },
        "attach_pdf": {"type": "boolean"},
        "link_base": {
            "type": "string",
            "format": "uri",
            "pattern": "^https?://",
            "x-hint": "where the PDFs are published; messages link to it",
        },
        "retry_interval": DURATION_T,
    },
}

DETECT_DIRECTION: dict[str, Any] = {"enum": ["up", "down", "both"]}
DETECT_METRIC: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "x-hint": "measurement.field, e.g. customers_daily.cancellations"},
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["metric"],
            "properties": {
                "metric": {"type": "string"},
                "direction": DETECT_DIRECTION,
                "method": {"enum": ["auto", "zscore", "seasonal_mad", "counts"]},
                "warning": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "critical": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "min_history_days": {"type": "integer", "minimum": 1, "maximum": 400},
            },
        },
    ]
}

def _schema(sources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "growthwatch configuration",
    "type": "object",
    "additionalProperties": False,
    "required": ["products"],
    "properties": {
        "reporting": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "currency": CURRENCY,
                "timezone": {"type": "string"},
                "fx_rates": {
                    "type": "object",
                    "x-hint": "currency -> list of {date: YYYY-MM-DD, rate: units of the "
                    "reporting currency per 1 unit}",
                    "propertyNames": {"pattern": "^[A-Z]{3}$"},
                    "additionalProperties": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["date", "rate"],
                            "properties": {
                                "date": {"type": "string", "format": "date"},
                                "rate": {"type": "number", "exclusiveMinimum": 0},
                            },
                        },
                    },
                },
            },
        },
        "storage": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "data_dir": {"type": "string"},
                "ledger": {"type": "string"},
                "inbox_retention_days": {
                    "type": "number", "exclusiveMinimum": 0,
                    "x-hint": "processed webhook payloads are deleted after this (default 30)",
                },
                "rejections_retention_days": {
                    "type": "number", "exclusiveMinimum": 0,
                    "x-hint": "rejected records are deleted after this (default 90)",
                },
            },
        },
        "influxdb": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "format": "uri", "pattern": "^https?://"},
                "database": {"type": "string", "minLength": 1},
                "retention_policy": {"type": "string"},
                "username": {"type": "string"},
                "password": SECRET,
                "token": SECRET,
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 100000},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
                "raw_events": {"type": "boolean"},
                "spool_max_mb": {
                    "type": "number", "exclusiveMinimum": 0,
                    "x-hint": "disk the spool may use while InfluxDB is away (default 1024); "
                    "when full, new points wait instead of old ones being dropped",
                },
            },
        },
        "products": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {
                    "id": SLUG,
                    "name": {"type": "string"},
                    "currency": CURRENCY,
                    "sources": {"type": "array", "items": {"$ref": "#/$defs/source"}},
                },
            },
        },
        "metrics": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "activation_window_days": {"type": "integer", "minimum": 1, "maximum": 365},
                "funnel_window_days": {"type": "integer", "minimum": 1, "maximum": 365},
                "movement_netting_minutes": {"type": "integer", "minimum": 0},
                "include_metered": {"type": "boolean"},
                "ltv_months": {"type": "integer", "minimum": 1, "maximum": 36},
                "trial_conversion_days": {"type": "integer", "minimum": 1, "maximum": 730},
                "memory_limit_mb": {"type": "integer", "minimum": 256,
                                    "x-hint": "memory a metrics run may use (default 2048): "
                                    "DuckDB spills beyond its share, families stream "
                                    "through the ledger in chunks that fit"},
                "segments": {
                    "type": "object",
                    "additionalProperties": False,
                    "x-hint": "segment series per plan, interval, country, channel or a "
                    "custom customer attribute (docs/metrics.md, Segments)",
                    "properties": {
                        "dimensions": {
                            "type": "array",
                            "uniqueItems": True,
                            "maxItems": 8,
                            "items": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
                            "x-hint": "plan, interval, country, channel or a metadata key of "
                            "the customers' events; [] for no segment series",
                        },
                        "max_values": {"type": "integer", "minimum": 1, "maximum": 500,
                                       "x-hint": "values kept per dimension; the rest are "
                                       "'other' (InfluxDB series cardinality)"},
                    },
                },
                "branch_types": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-hint": "event types that count as 'where users went instead' in funnels",
                },
                "funnels": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "steps"],
                        "properties": {
                            "name": SLUG,
                            "steps": {"type": "array", "minItems": 2, "items": {"type": "string"}},
                            "window_days": {"type": "integer", "minimum": 1},
                        },
                    },
                },
            },
        },
        "archive": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "bigquery": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["project", "dataset"],
                    "properties": {
                        "project": {"type": "string"},
                        "dataset": {"type": "string", "pattern": "^[A-Za-z0-9_]+$"},
                        "location": {"type": "string"},
                        "credentials_file": SECRET,
                        "api_endpoint": {"type": "string", "format": "uri"},
                        "storage_endpoint": {
                            "type": "string",
                            "pattern": r"^[A-Za-z0-9.-]+:[0-9]+$",
                            "x-hint": "host:port of a plain-gRPC Storage Read API (emulator)",
                        },
                    },
                },
                # archive branch: when serve archives, and what may leave the ledger/InfluxDB
                "schedule": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "every": DURATION_T,
                        "close_after": DURATION_T,
                        "metrics": {"type": "boolean"},
                    },
                },
                "retention": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "ledger_days": {"type": "integer", "minimum": 90},
                        "influx_days": {"type": "integer", "minimum": 1},
                    },
                },
            },
        },
        "detector": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "method": {"enum": ["auto", "zscore", "seasonal_mad", "counts"]},
                "baseline_days": {"type": "integer", "minimum": 7, "maximum": 400},
                "min_history_days": {"type": "integer", "minimum": 1, "maximum": 400},
                "warning": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "critical": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "direction": DETECT_DIRECTION,
                "adapt_after": DURATION_T,
                "resolve_after": DURATION_T,
                "cooldown": DURATION_T,
                "interval": DURATION_T,
                "intraday": {"type": "boolean"},
                "intraday_window": DURATION_T,
                "multi_days": {"type": "integer", "minimum": 1},
                "segments": {"type": "array", "items": {"type": "string"}},
                "metrics": {"type": "array", "items": DETECT_METRIC},
            },
        },
        "alerts": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"routes": {"type": "array", "items": ALERT_ROUTE}},
        },
        "grafana": {
            "type": "object",
            "additionalProperties": False,
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "format": "uri", "pattern": "^https?://"},
                "token": SECRET,
                "live": {"type": "boolean", "x-hint": "push fresh points to Grafana Live (default true)"},
                "annotations": {"type": "boolean", "x-hint": "the detector posts annotations (default true)"},
            },
        },
        "report": REPORT,
        "server": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "host": {"type": "string"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "metrics_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                "metrics_host": {"type": "string", "x-hint": "where /metrics listens (default: host)"},
            },
        },
    },
    "$defs": {
        "source": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": [s["properties"]["type"]["const"] for s in sources]}},
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": s["properties"]["type"]["const"]}}},
                    "then": s,
                }
                for s in sources
            ],
        }
    },
}  # fmt: skip


@functools.cache
def schema() -> dict[str, Any]:
    """The whole config schema (built on first use: the source types are discovered)."""
    return _schema(source_schemas())
