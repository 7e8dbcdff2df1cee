"""The two seams every component reads and writes metric series through.

Detectors, the board report, the dashboards' checks and the archive replay must not care
whether the series live in InfluxDB or in the embedded DuckDB store, so both stores speak
the same two small protocols (as every Prometheus collector speaks ``collect()``):

* ``SeriesReader.read(measurement, fields=, tags=, start=, end=) -> DataFrame``: a wide
  frame with a ``time`` column (UTC, sorted), one column per tag and one per field; an
  empty frame (with a ``time`` column) when nothing matches. ``start`` is inclusive,
  ``end`` exclusive; ``tags`` filters on exact values; ``fields`` picks field columns
  (``None``: every field).
* ``SeriesWriter.write(batches) -> WriteResult``: upsert by (measurement, tags, time);
  a NaN field removes a stored value.

The shared contract test (``tests/core/test_series_contract.py``) runs the same cases
against the embedded store and a real InfluxDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from growthwatch.points import PointBatch


@dataclass
class WriteResult:
    """What one ``write`` call did.

    ``points``: points stored (for InfluxDB: acknowledged, replayed spool included);
    ``spooled``: points parked on disk because the server was unreachable;
    ``requests``: HTTP requests made (0 for the embedded store).
    """

    points: int = 0
    spooled: int = 0
    requests: int = 0

    def __iadd__(self, other: WriteResult) -> WriteResult:
        self.points += other.points
        self.spooled += other.spooled
        self.requests += other.requests
        return self


@runtime_checkable
class SeriesReader(Protocol):
    def read(
        self,
        measurement: str,
        *,
        fields: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Any:  # pandas.DataFrame (pandas is typed Any here, see README)
        ...


@runtime_checkable
class SeriesWriter(Protocol):
    def write(self, data: PointBatch | Iterable[PointBatch]) -> WriteResult: ...


@runtime_checkable
class SeriesDeleter(Protocol):
    """Removes stored points: a recompute whose result has fewer rows than before (a late
    signup moved a user to an earlier cohort) deletes the range it rewrites first.

    ``tags`` maps a tag to one value or to several (any of them); ``start`` inclusive,
    ``end`` exclusive; nothing given removes the whole measurement.
    """

    def delete(
        self,
        measurement: str,
        *,
        tags: Mapping[str, str | Sequence[str]] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None: ...


class SeriesStoreLike(SeriesReader, SeriesWriter, Protocol):
    """Both seams at once: what the metrics engine writes into and outputs read from."""
