"""The source registry: one stream class per source type is all the config, serve and
backfill need; the registry and the config schema agree key for key."""

from __future__ import annotations

import gc
import inspect
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from exporters.base import Batch, Stream
from exporters.registry import build_stream, scheduled_types, stream_types
from growthwatch.config import check_file, load_config
from growthwatch.config.schema import schema, source_schemas

COMMON = {"type", "name", "enabled", "schedule", "lookback", "start_date"}


def test_every_source_type_is_found_by_its_class() -> None:
    assert set(stream_types()) == {"stripe", "mixpanel", "ga4", "sql", "csv"}
    assert scheduled_types() == {"stripe", "mixpanel", "ga4", "sql"}  # csv is a one-off


def test_the_config_schema_is_the_registry_key_for_key() -> None:
    by_type = {s["properties"]["type"]["const"]: s for s in source_schemas()}
    assert set(by_type) == set(stream_types())
    for kind, cls in stream_types().items():
        declared = by_type[kind]
        assert set(declared["properties"]) - COMMON == set(cls.options), kind
        assert declared["required"] == ["type", *cls.required], kind
        assert declared["additionalProperties"] is False


@pytest.mark.parametrize("kind", ["stripe", "mixpanel", "ga4", "sql", "csv"])
def test_every_accepted_option_is_read_by_its_stream(kind: str) -> None:
    """An option nobody reads would be a key that does nothing."""
    cls = stream_types()[kind]
    code = inspect.getsource(inspect.getmodule(cls))  # type: ignore[arg-type]
    body = code.split("options: ClassVar", 1)[0] + code.split("required: ClassVar", 1)[1]
    body += "".join(inspect.getsource(base) for base in cls.__mro__[1:-1])  # HttpStream ...
    for key in cls.options:
        assert f'"{key}"' in body, f"{kind}: option {key!r} is accepted but never read"


@pytest.fixture
def extra_source() -> Iterator[type[Stream]]:
    """A source added the documented way: one Stream subclass, nothing else edited."""

    class EchoStream(Stream):
        source_type: ClassVar[str] = "echo"
        replication_key: ClassVar[str] = "ts"
        schema: ClassVar[Mapping[str, str]] = {"ts": "time"}
        options: ClassVar[Mapping[str, Any]] = {"greeting": {"type": "string"}}
        required: ClassVar[tuple[str, ...]] = ("greeting",)

        def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
            yield Batch(events=[], cursor=until)

    stream_types.cache_clear()
    schema.cache_clear()
    yield EchoStream
    del EchoStream
    gc.collect()
    stream_types.cache_clear()
    schema.cache_clear()


def test_a_new_stream_class_is_a_configurable_source(extra_source: type[Stream],
                                                     tmp_path: Path) -> None:  # fmt: skip
    path = tmp_path / "growthwatch.yaml"
    doc = {"products": [{"id": "p", "sources": [{"type": "echo", "greeting": "hi"}]}]}
    path.write_text(yaml.safe_dump(doc))
    assert check_file(path)[0] == []
    config = load_config(path)
    stream = build_stream(config.products[0].sources[0], state=None)  # type: ignore[arg-type]
    assert isinstance(stream, extra_source) and "echo" in scheduled_types()
    doc["products"][0]["sources"][0]["colour"] = "red"  # type: ignore[index]
    path.write_text(yaml.safe_dump(doc))
    (problem,) = check_file(path)[0]
    assert "colour" in problem.message
