"""Line protocol: InfluxDB's escaping rules, checked by hand and through a real InfluxDB."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from growthwatch.points import Point, PointBatch
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.lineprotocol import (
    LineProtocolError,
    encode_batch,
    encode_point,
    sanitize_tag_value,
)
from growthwatch.testing.servers import InfluxServer

T = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
NS = 1735787045000000000


def test_escaping_by_hand() -> None:
    point = Point(
        "my measure,x",
        {"tag key": "a b,c=d", "plain": "x\\y"},
        {"f=1": 1.5, "n": 3, "ok": True, "s": 'say "hi" \\ bye\nnext line'},
        T,
    )
    assert encode_point(point) == (
        r"my\ measure\,x,plain=x\y,tag\ key=a\ b\,c\=d "
        r'f\=1=1.5,n=3i,ok=true,s="say \"hi\" \\ bye' + "\n" + r'next line" ' + str(NS)
    )


def test_unstorable_values() -> None:
    assert encode_point(Point("m", {}, {"x": math.nan}, T)) is None
    assert encode_point(Point("m", {}, {"x": math.inf, "y": 2.0}, T)) == f"m y=2.0 {NS}"
    for bad in ("line\nbreak", "ends\\", "esc\\,comma", "esc\\ space"):
        with pytest.raises(LineProtocolError, match="cannot be written"):
            encode_point(Point("m", {"t": bad}, {"v": 1.0}, T))
    assert sanitize_tag_value("two\nlines\\") == "two lines"


def test_batch_encoding_matches_point_encoding() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([T, T], utc=True),
            "product": ["a b", "c,d"],
            "n": pd.Series([1, 2], dtype="int64"),
            "x": [0.1, math.nan],
            "s": ['q"', None],
        }
    )
    lines = list(encode_batch(PointBatch("m", frame, ("product",), ("n", "s", "x"))))
    assert lines == [
        encode_point(Point("m", {"product": "a b"}, {"n": 1, "x": 0.1, "s": 'q"'}, T)),
        encode_point(Point("m", {"product": "c,d"}, {"n": 2}, T)),
    ]


def test_vectorised_batch_encoding_matches_point_by_point_on_random_frames() -> None:
    """encode_batch (Arrow compute) against encode_point, row by row, on awkward values:
    escapes, missing tags, NaN/inf, -0.0, big and tiny floats, ints, bools, text."""
    rng = np.random.default_rng(7)
    n = 2_000
    frame = pd.DataFrame(
        {
            "time": pd.Timestamp(T) + pd.to_timedelta(rng.integers(0, 10**15, n), unit="ns"),
            "p": rng.choice(np.array(["a b", "c,d", "e=f", None, "x\\y", "é"], dtype=object), n),
            "q": pd.Series(rng.choice(["u", "v"], n), dtype="str"),
            "f": rng.choice([0.1, -0.0, 0.0, 1e16, 1e-7, math.nan, math.inf, 3.0, 1 / 3], n),
            "g": rng.choice([math.nan, 2.5], n),
            "i": rng.integers(-(10**15), 10**15, n),
            "b": rng.choice([True, False], n),
            "s": rng.choice(np.array(['say "hi" \\ x', "", None, "a\nb"], dtype=object), n),
            "t": pd.Series(rng.choice(['q"', "c\\d", "plain"], n), dtype="str"),
        }
    )
    for tags, fields in [(("p", "q"), ("b", "f", "g", "i", "s", "t")), ((), ("f", "g"))]:
        got = list(encode_batch(PointBatch("m x,y", frame, tags, fields)))
        want = []
        for row in frame.itertuples(index=False):
            values = {f: getattr(row, f) for f in fields}
            kept = {k: v for k, v in values.items() if v is not None and not (
                isinstance(v, float) and math.isnan(v))}  # fmt: skip
            row_tags = {t: getattr(row, t) for t in tags if isinstance(getattr(row, t), str)}
            line = encode_point(Point("m x,y", row_tags, kept, row.time)) if kept else None
            if line is not None:
                want.append(line)
        assert got == want
        assert len(want) < n or fields != ("f", "g")  # some rows have nothing storable



def _point_by_point(frame: pd.DataFrame, measurement: str, tags: tuple[str, ...],
                    fields: tuple[str, ...]) -> list[str]:  # fmt: skip
    """encode_point row by row: the reference every batch encoding must equal."""
    out = []
    for row in frame.itertuples(index=False):
        values = {f: getattr(row, f) for f in fields}
        kept = {k: v for k, v in values.items() if v is not None and not (
            isinstance(v, float) and math.isnan(v))}  # fmt: skip
        row_tags = {t: getattr(row, t) for t in tags if isinstance(getattr(row, t), str)}
        line = encode_point(Point(measurement, row_tags, kept, row.time)) if kept else None
        if line is not None:
            out.append(line)
    return out


def test_batches_whose_every_row_stores_every_field_match_point_by_point() -> None:
    """The one-join path (no missing field anywhere), with tags missing on some rows,
    strings with and without characters to escape, and the raw event points' layout."""
    rng = np.random.default_rng(11)
    n = 3_000
    frame = pd.DataFrame(
        {
            "time": pd.Timestamp(T) + pd.to_timedelta(rng.integers(0, 10**15, n), unit="ns"),
            "product": pd.Series(rng.choice(["acme", "b b", "c,d"], n), dtype="str"),
            "type": rng.choice(np.array(["signup", None, "x=y"], dtype=object), n),
            "source": pd.Series(rng.choice(["demo", "stripe"], n), dtype="str"),
            "value": rng.choice([1.0, 0.1, -0.0, 1e16, 12.5], n),
            "plain": pd.Series([f"usr_{i}" for i in rng.integers(0, 10**6, n)], dtype="str"),
            "quoted": rng.choice(np.array(['say "hi"', "c\\d", "plain"], dtype=object), n),
            "i": rng.integers(-(10**6), 10**6, n),
        }
    )
    for tags, fields in [(("product", "source", "type"), ("plain", "value")),
                         (("type",), ("i", "quoted")), ((), ("value",))]:  # fmt: skip
        got = list(encode_batch(PointBatch("growth_events", frame, tags, fields)))
        assert got == _point_by_point(frame, "growth_events", tags, fields)
        assert len(got) == n


def test_many_distinct_tag_combinations_match_point_by_point() -> None:
    """Five tags of 10,000 values each: too many combinations to number by a mixed radix,
    so the distinct rows are numbered instead."""
    rng = np.random.default_rng(5)
    n = 20_000
    columns = {f"t{k}": pd.Series([f"v{i}" for i in rng.integers(0, 10_000, n)], dtype="str")
               for k in range(5)}  # fmt: skip
    frame = pd.DataFrame({"time": pd.Timestamp(T) + pd.to_timedelta(np.arange(n), unit="s"),
                          **columns, "x": rng.random(n)})  # fmt: skip
    tags = tuple(columns)
    got = list(encode_batch(PointBatch("m", frame, tags, ("x",))))
    assert got == _point_by_point(frame, "m", tags, ("x",))

NASTY = [
    "space here",
    "comma,here",
    "equals=here",
    'quote"here',
    "back\\slash",
    'all of , = " \\them',
]


@pytest.mark.influx
def test_round_trip_through_real_influxdb(influx_server: InfluxServer, influx_db: str) -> None:
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    points = [
        Point(
            "weird measure,name",
            {"tag key": tag, "idx": str(i)},
            {"field key,=": float(i), "text": tag + "\nsecond line \\ end\\"},
            datetime(2025, 1, 1, 0, 0, i, tzinfo=UTC),
        )
        for i, tag in enumerate(NASTY)
    ]
    result = store.write(points)
    assert result.points == len(NASTY)
    rows = influx_server.query('SELECT * FROM "weird measure,name"', influx_db)
    got = sorted(rows, key=lambda r: int(str(r["idx"])))
    assert [r["tag key"] for r in got] == NASTY
    assert [r["text"] for r in got] == [t + "\nsecond line \\ end\\" for t in NASTY]
    assert [r["field key,="] for r in got] == [float(i) for i in range(len(NASTY))]
    tag_values = influx_server.query(
        'SHOW TAG VALUES FROM "weird measure,name" WITH KEY = "tag key"', influx_db
    )
    assert sorted(str(r["value"]) for r in tag_values) == sorted(NASTY)
