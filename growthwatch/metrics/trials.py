"""Trials: trial-to-paid conversion per trial-start cohort, and active trials per day.

Definitions (docs/metrics.md, "Trials"):

* A trial is a ``trial_started`` event, one per (product, customer, subscription); a
  repeated start of the same subscription (a backfill and a webhook of one trial) is the
  same trial, its earliest start wins.
* It converts when the same customer reaches a paid period within N days of the start
  (``trial_conversion_days``): a subscription event whose ``mrr_after`` is above 0
  (``subscription_started``/``changed``/``reactivated``/``resumed``) at or after the start
  and at most N days later. That is how both the Stripe mapping (``subscription_started``
  at ``trial_end``) and the demo express a conversion, and it is the moment the MRR engine
  counts the customer as paying. Payments are not read: a one-off charge during a trial
  (a setup fee, metered usage) is not a paid period, and the first invoice of a paid
  period comes with the MRR event anyway.
* A cohort is the local day (``trials_daily``) or month (``trials_monthly``) of the
  starts, in the reporting timezone. It is mature once N days have passed after its last
  possible start (day d: the start of day d + N + 1). ``trial_conversion`` =
  converted / started, NaN (undefined, not written) while the cohort is ``maturing`` or
  when it has no trials; the counts are written either way.
* A trial ends at the first of: its conversion (any later paid period, even after N days),
  its cancellation (``subscription_cancelled`` of the same customer and subscription), or
  its trial end: ``metadata["trial_end"]`` when the source gives it (ISO 8601 or epoch
  seconds), else start + N days. ``active_trials`` on day d counts the trials whose start
  day is <= d and whose end day is > d: they are still running when day d ends. A trial
  that starts and ends on the same day is never active.

Every function is pure (events in, frames out) and vectorised: one ``merge_asof`` finds
each trial's first paid period and cancellation, +1/-1 at the start and end days and a
cumulative sum give every day's active count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import (
    TIME_DTYPE,
    clean,
    day_starts,
    empty,
    json_key,
    local_day_numbers,
    local_month_numbers,
    month_starts,
    naive_utc,
    ratio,
    with_portfolio,
)
from growthwatch.metrics.settings import MetricsSettings

PAID_TYPES = (
    EventType.SUBSCRIPTION_STARTED.value,
    EventType.SUBSCRIPTION_CHANGED.value,
    EventType.SUBSCRIPTION_REACTIVATED.value,
    EventType.SUBSCRIPTION_RESUMED.value,
)
END_TYPES = (EventType.SUBSCRIPTION_CANCELLED.value,)
TYPES = (EventType.TRIAL_STARTED.value, *PAID_TYPES, *END_TYPES)
DAILY_COUNTS = ("trials_started", "trials_converted", "active_trials")
MONTHLY_COUNTS = ("trials_started", "trials_converted")
DAILY_COLUMNS = {"time": TIME_DTYPE, "product": "str", **dict.fromkeys(DAILY_COUNTS, "int64"),
                 "maturing": "int64", "trial_conversion": "float64"}  # fmt: skip
MONTHLY_COLUMNS = {"time": TIME_DTYPE, "product": "str", **dict.fromkeys(MONTHLY_COUNTS, "int64"),
                   "maturing": "int64", "trial_conversion": "float64"}  # fmt: skip
TRIAL_COLUMNS = {"product": "str", "subject": "str", "subscription": "str",
                 "start": TIME_DTYPE, "converted_at": TIME_DTYPE, "end": TIME_DTYPE}  # fmt: skip


def _trial_end(metadata: pd.Series) -> pd.Series:
    """``metadata["trial_end"]`` as UTC instants (NaT where missing or unreadable)."""
    raw = json_key(metadata, "trial_end")
    numeric = pd.to_numeric(raw, errors="coerce")
    as_epoch = pd.to_datetime(numeric, unit="s", utc=True, errors="coerce")
    as_text = pd.to_datetime(raw.where(numeric.isna()), utc=True, errors="coerce", format="ISO8601")
    return _aware(as_epoch.fillna(as_text))


def _aware(values: pd.Series) -> pd.Series:
    """Any datetime-like column (naive means UTC, or all NaT) as ``TIME_DTYPE``."""
    return pd.to_datetime(values, utc=True).astype(TIME_DTYPE)


def _first_after(left: pd.DataFrame, right: pd.DataFrame, by: list[str], name: str) -> pd.Series:
    """Per row of ``left``, the earliest ``right.ts`` of the same ``by`` at or after its
    ``start`` (NaT when none): one sorted ``merge_asof``, not a cross join."""
    if right.empty:
        return pd.Series(pd.NaT, index=left.index, dtype=TIME_DTYPE)
    if len(left) * len(right) <= _PAIRWISE:
        return _first_after_pairwise(left, right, by)
    lhs = left[[*by, "start"]].assign(_row=np.arange(len(left)))
    lhs["_t"] = naive_utc(lhs["start"])
    rhs = right[[*by]].assign(**{name: naive_utc(right["ts"])})
    rhs["_t"] = rhs[name]
    found = pd.merge_asof(
        lhs.sort_values("_t", kind="stable"), rhs.sort_values("_t", kind="stable"),
        on="_t", by=by, direction="forward", allow_exact_matches=True,
    ).sort_values("_row")  # fmt: skip
    return _aware(pd.Series(found[name].to_numpy(), index=left.index))


# Below this many (trial, event) pairs ``_first_after`` compares every pair in numpy: an
# update's few touched customers, where a ``merge_asof``'s fixed cost (sorts, frames) is
# most of the trial family's time.
_PAIRWISE = 100_000


def _first_after_pairwise(left: pd.DataFrame, right: pd.DataFrame, by: list[str]) -> pd.Series:
    """``_first_after`` by comparing every (row, event) pair: the same earliest
    ``right.ts`` of the same ``by`` at or after the row's ``start``."""
    keys = pd.concat([left[by], right[by]], ignore_index=True).astype(object)
    codes = keys.groupby(by, sort=False, dropna=False).ngroup().to_numpy()
    lk, rk = codes[: len(left)], codes[len(left):]
    lt = naive_utc(left["start"]).astype("int64")
    rt = naive_utc(right["ts"]).astype("int64")
    ok = (lk[:, None] == rk[None, :]) & (rt[None, :] >= lt[:, None])
    big = np.iinfo("int64").max
    first = np.where(ok, rt[None, :], big).min(axis=1)
    found = np.where(first == big, np.datetime64("NaT"), first.astype("datetime64[us]"))
    return _aware(pd.Series(found, index=left.index))


def trial_table(events: pd.DataFrame, settings: MetricsSettings) -> pd.DataFrame:
    """One row per trial: its start, conversion (NaT when it did not convert within N
    days) and end (conversion, cancellation or trial end, whichever came first)."""
    ev = clean(events, TYPES, ordered=False)
    # json_key wants a default index (it aligns its result by position)
    ev = ev[ev["subject"].notna()].reset_index(drop=True)
    if ev.empty:
        return empty(TRIAL_COLUMNS)
    ev = ev.assign(
        subscription=json_key(ev["metadata"], "subscription").fillna("").astype(str),
        product=ev["product"].astype(str),
        subject=ev["subject"].astype(str),
    )
    kind = ev["type"]
    starts = ev[kind == EventType.TRIAL_STARTED.value].reset_index(drop=True)
    if starts.empty:
        return empty(TRIAL_COLUMNS)
    starts = starts.assign(trial_end=_trial_end(starts["metadata"]), start=starts["ts"])
    starts = starts.sort_values("start", kind="stable").drop_duplicates(
        ["product", "subject", "subscription"], keep="first"
    )
    starts = starts.reset_index(drop=True)
    after = ev["mrr_after"].fillna(0) > 0
    paid = ev[kind.isin(list(PAID_TYPES)) & after]
    cancels = ev[kind.isin(list(END_TYPES))]
    paid_at = _first_after(starts, paid, ["product", "subject"], "_paid")
    cancel_at = _first_after(starts, cancels, ["product", "subject", "subscription"], "_cancel")
    window = pd.Timedelta(days=settings.trial_conversion_days)
    start = starts["start"].astype(TIME_DTYPE)
    converted = _aware(paid_at.where(paid_at - start <= window))
    nominal = _aware(starts["trial_end"].where(starts["trial_end"].notna(), start + window))
    end = _aware(pd.concat([paid_at, cancel_at, nominal], axis=1).min(axis=1))
    return pd.DataFrame(
        {
            "product": starts["product"].to_numpy(dtype=object),
            "subject": starts["subject"].to_numpy(dtype=object),
            "subscription": starts["subscription"].to_numpy(dtype=object),
            "start": start.array,
            "converted_at": converted.array,
            "end": end.array,
        }
    )


def _horizon_day(events: pd.DataFrame, until: pd.Timestamp | None, tz: str) -> int | None:
    days: list[int] = []
    if not events.empty:
        days.append(
            int(local_day_numbers(pd.Series([events["ts"].max()]).astype(TIME_DTYPE), tz)[0])
        )
    if until is not None:
        days.append(int(local_day_numbers(pd.Series([until]).astype(TIME_DTYPE), tz)[0]))
    return max(days) if days else None


def _maturing(closes: pd.Series, horizon: pd.Timestamp) -> np.ndarray:
    limit = naive_utc(pd.Series([horizon]).astype(TIME_DTYPE))[0]
    return (naive_utc(closes) > limit).astype("int64")


def _first_day_per_product(
    trials: pd.DataFrame, first_days: pd.Series | None, tz: str
) -> pd.Series:
    firsts = pd.Series(local_day_numbers(trials["start"], tz), index=trials.index)
    seen = firsts.groupby(trials["product"].to_numpy()).min()
    if first_days is not None and len(first_days):
        given = pd.Series(
            local_day_numbers(pd.Series(first_days.to_numpy()).astype(TIME_DTYPE), tz),
            index=first_days.index.astype(str),
        )
        seen = pd.concat([seen, given]).groupby(level=0).min()
    return seen.sort_index()


def trials_daily(
    events: pd.DataFrame,
    settings: MetricsSettings,
    until: pd.Timestamp | None = None,
    first_days: pd.Series | None = None,
) -> pd.DataFrame:
    """Per product (and ``all``) and local day, from the product's first trial day to
    ``until`` (default: the last event): trials started that day, how many of them
    converted, the day cohort's conversion rate, and the trials active at the day's end.

    ``first_days`` (product -> first ``trial_started`` instant in the whole history) lets a
    caller that passes only recent events still start every product's grid where a full
    computation would.
    """
    tz = settings.timezone
    trials = trial_table(events, settings)
    horizon_day = _horizon_day(events, until, tz)
    if trials.empty or horizon_day is None:
        return empty(DAILY_COLUMNS)
    first = _first_day_per_product(trials, first_days, tz)
    products = pd.Index(first.index)
    start_day = int(first.min())
    end_day = max(horizon_day, int(first.max()))
    n = end_day - start_day + 1
    p = products.get_indexer(trials["product"])
    s_day = local_day_numbers(trials["start"], tz) - start_day
    e_day = local_day_numbers(trials["end"], tz) - start_day
    grid = np.zeros((len(products), n + 1, len(DAILY_COUNTS)), dtype="int64")
    np.add.at(grid[:, :, 0], (p, s_day), 1)
    conv = trials["converted_at"].notna().to_numpy()
    np.add.at(grid[:, :, 1], (p[conv], s_day[conv]), 1)
    # active on days [start day, end day): +1 at the start, -1 at the end (clipped to the grid)
    delta = np.zeros((len(products), n + 1), dtype="int64")
    runs = e_day > s_day
    np.add.at(delta, (p[runs], s_day[runs]), 1)
    np.add.at(delta, (p[runs], np.minimum(e_day[runs], n)), -1)
    grid[:, :, 2] = np.cumsum(delta, axis=1)
    out = _rows(grid[:, :n], DAILY_COUNTS, "_day", np.arange(start_day, end_day + 1), first)
    out["time"] = day_starts(out["_day"].to_numpy(), tz).to_numpy()
    closes = day_starts(out["_day"].to_numpy() + settings.trial_conversion_days + 1, tz)
    horizon = day_starts(np.array([end_day + 1]), tz).iloc[0] if until is None else until
    return _finish(out, closes, horizon, DAILY_COLUMNS)


def trials_monthly(
    events: pd.DataFrame,
    settings: MetricsSettings,
    until: pd.Timestamp | None = None,
    first_days: pd.Series | None = None,
) -> pd.DataFrame:
    """Per product (and ``all``) and local month of the trial starts: started, converted
    and the month cohort's conversion (mature N days after the month's last day)."""
    tz = settings.timezone
    trials = trial_table(events, settings)
    horizon_day = _horizon_day(events, until, tz)
    if trials.empty or horizon_day is None:
        return empty(MONTHLY_COLUMNS)
    first_day = _first_day_per_product(trials, first_days, tz)
    first = pd.Series(
        day_numbers_to_months(first_day.to_numpy(dtype="int64")), index=first_day.index
    )
    products = pd.Index(first.index)
    start_m = int(first.min())
    end_m = max(int(day_numbers_to_months(np.array([horizon_day]))[0]), int(first.max()))
    n = end_m - start_m + 1
    p = products.get_indexer(trials["product"])
    month = local_month_numbers(trials["start"], tz) - start_m
    grid = np.zeros((len(products), n, len(MONTHLY_COUNTS)), dtype="int64")
    np.add.at(grid[:, :, 0], (p, month), 1)
    conv = trials["converted_at"].notna().to_numpy()
    np.add.at(grid[:, :, 1], (p[conv], month[conv]), 1)
    out = _rows(grid, MONTHLY_COUNTS, "_month", np.arange(start_m, end_m + 1), first)
    out["time"] = month_starts(out["_month"].to_numpy(), tz).to_numpy()
    # the month's last possible start is on its last day: mature N days after that day ends
    last_day = month_first_day(out["_month"].to_numpy() + 1) - 1
    closes = day_starts(last_day + settings.trial_conversion_days + 1, tz)
    horizon = day_starts(np.array([horizon_day + 1]), tz).iloc[0] if until is None else until
    return _finish(out, closes, horizon, MONTHLY_COLUMNS)


def _rows(
    grid: np.ndarray, counts: Sequence[str], bucket: str, buckets: np.ndarray, first: pd.Series
) -> pd.DataFrame:
    """A (product, bucket, count) grid as rows, each product's from its ``first`` bucket
    (``first``: product -> bucket number, in the grid's product order), plus the
    portfolio's."""
    n = len(buckets)
    out = pd.DataFrame(grid.reshape(-1, len(counts)), columns=list(counts)).assign(
        **{bucket: np.tile(buckets, len(first))},
        product=np.repeat(np.asarray(first.index, dtype=object), n),
        _first=np.repeat(first.to_numpy(dtype="int64"), n),
    )
    out = out[out[bucket] >= out["_first"]].drop(columns="_first")
    return with_portfolio(out, [bucket], list(counts))


def day_numbers_to_months(days: np.ndarray) -> np.ndarray:
    """Calendar months since 1970-01 of day numbers (both local)."""
    return (
        np.asarray(days, dtype="int64")
        .astype("datetime64[D]")
        .astype("datetime64[M]")
        .astype("int64")
    )


def month_first_day(months: np.ndarray) -> np.ndarray:
    """Day number of the first day of month numbers."""
    return (
        np.asarray(months, dtype="int64")
        .astype("datetime64[M]")
        .astype("datetime64[D]")
        .astype("int64")
    )


def _finish(
    out: pd.DataFrame, closes: pd.Series, horizon: pd.Timestamp, columns: dict[str, str]
) -> pd.DataFrame:
    out["time"] = pd.to_datetime(out["time"], utc=True).astype(TIME_DTYPE)
    out["maturing"] = _maturing(closes, horizon)
    rate = ratio(out["trials_converted"], out["trials_started"])
    out["trial_conversion"] = np.where(out["maturing"].to_numpy() == 1, np.nan, rate)
    out = out.sort_values(["product", "time"], kind="stable")
    return out[list(columns)].astype(columns).reset_index(drop=True)
