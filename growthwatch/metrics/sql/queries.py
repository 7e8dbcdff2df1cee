"""Every SQL statement of logo retention and funnels, built in one place (pure text).

The queries read an events table with the ledger's column names (``product``, ``type``,
``ts``, ``subject``, ``kind``, ``idempotency_key``), which the BigQuery archive's
``events`` table shares; ``Source`` says which table and which rows (products left out,
a ``seq`` range, a time range). The definitions are those of ``growthwatch.metrics.cohorts``
and ``growthwatch.metrics.funnels`` (the pandas functions, kept as the reference the tests
compare with):

* logo retention: a user's cohort is the local month of their first ``signup``; the cell
  (cohort, month) counts the members with an ``active_use`` in that month; cohort sizes
  come back as rows whose ``month`` is NULL.
* funnels: a user enters at their first step-1 event; step k is the first step-k event at
  or after step k-1 was reached and within the window of entry; a user who stalls goes on
  to the first event (time, then key) of a branch type after the step reached, within
  the window, of a type other than that step's.
* traffic (``growthwatch.metrics.traffic``): per local day, product and channel the
  sessions (sum of ``value``), their distinct visitors, the signups, each attributed to
  the channel of its session (the latest session of the same user and product at most
  ``SESSION_MINUTES`` before it, ties to the greater key; else its own channel), and the
  converting sessions (those a signup was attributed to); plus the ``channel = all`` and
  ``product = all`` rows.
* signups and activations (``growthwatch.metrics.engagement``): per local day and
  product the distinct users with a ``signup``, with an ``activation``, and of the day's
  signups those with an activation at most ``activation_window_days`` x 24 hours after
  their signup (events with a user only).
* revenue (``growthwatch.metrics.revenue``): per local day or UTC hour, product and
  currency the payments, refunds and failed payments, summed in micro-units and counted;
  the rates, zero hours and portfolio rows are pandas' (``revenue.from_sums``).

Month numbers are local months since 1970-01 (``growthwatch.metrics.sql.month_number``);
turning them into bucket instants is the caller's (pandas, on a handful of cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from growthwatch.metrics.sql import Span, day_number, literal, literals, month_number

NONE = "(none)"  # growthwatch.metrics.funnels.NONE: a stalled user who did nothing else


@dataclass(frozen=True)
class Source:
    """The events a query reads: a table (or relation) and a condition on its rows."""

    table: str = "events"
    where: str = "TRUE"

    def rows(self, condition: str) -> str:
        """``FROM table WHERE`` this source's condition and ``condition``."""
        return f"FROM {self.table} WHERE {condition} AND ({self.where})"


def ledger_where(
    exclude: Sequence[str] = (),
    after_seq: int | None = None,
    upto_seq: int | None = None,
    since: str | None = None,
    before: str | None = None,
) -> str:
    """A ``Source.where`` for the ledger: products left out, ``seq`` in (after, upto],
    ``ts`` from an instant and before one (ISO 8601 literals with their offset)."""
    parts = []
    if before is not None:
        parts.append(f"ts < CAST({literal(before)} AS TIMESTAMPTZ)")
    if exclude:
        parts.append(f"product NOT IN {literals(exclude)}")
    if after_seq is not None:
        parts.append(f"seq > {literal(after_seq)}")
    if upto_seq is not None:
        parts.append(f"seq <= {literal(upto_seq)}")
    if since is not None:
        parts.append(f"ts >= CAST({literal(since)} AS TIMESTAMPTZ)")
    return " AND ".join(parts) or "TRUE"


def subject_part(index: int, parts: int) -> str:
    """The rows of one of ``parts`` disjoint partitions of the users (by a hash of
    ``subject``): a per-user state built one partition at a time holds a ``parts``-th of
    the users' groups at once, and the union of the partitions is the whole. A device of
    the ledger's DuckDB, which must keep to its ``memory_limit``; ``TRUE`` for one part
    (what another engine, BigQuery, runs: it needs no partitions, and DuckDB's ``hash``
    is not its ``FARM_FINGERPRINT``)."""
    if parts <= 1:
        return "TRUE"
    return f"{subject_hash(parts)} = {literal(int(index))}"


def subject_hash(parts: int) -> str:
    """The partition number of a row among ``parts`` (``subject_part``'s: one place)."""
    return f"hash(subject) % {literal(int(parts))}"


# -- logo retention ------------------------------------------------------------------------


def logo_members(src: Source, tz: str, span: Span | None = None) -> str:
    """(product, subject, cohort): each user's first signup month (``span``: see
    ``month_number``)."""
    rows = src.rows("type = 'signup' AND subject IS NOT NULL")
    return (f"SELECT product, subject, MIN({month_number('ts', tz, span)}) AS cohort {rows} "
            "GROUP BY product, subject")  # fmt: skip


def logo_active(src: Source, tz: str, span: Span | None = None) -> str:
    """(product, subject, month): the months each user was active, once each."""
    rows = src.rows("type = 'active_use' AND subject IS NOT NULL")
    return f"SELECT DISTINCT product, subject, {month_number('ts', tz, span)} AS month {rows}"


def logo_cells(members: str, active: str, from_month: int) -> str:
    """Cohort x month counts of the members active that month (months from
    ``from_month``), and every cohort's size (``month`` NULL), from two relations
    shaped as ``logo_members`` and ``logo_active``."""
    return (
        "SELECT m.product AS product, m.cohort AS cohort, a.month AS month, "
        "COUNT(*) AS users "
        f"FROM {members} AS m JOIN {active} AS a "
        "ON a.product = m.product AND a.subject = m.subject "
        f"WHERE a.month >= m.cohort AND a.month >= {literal(from_month)} "
        "GROUP BY m.product, m.cohort, a.month "
        "UNION ALL "
        "SELECT product, cohort, CAST(NULL AS BIGINT) AS month, COUNT(*) AS users "
        f"FROM {members} GROUP BY product, cohort"
    )


def logo_last_month(src: Source, tz: str) -> str:
    """The last month with a signup or an active use of a user (the triangle's edge)."""
    rows = src.rows("type IN ('signup', 'active_use') AND subject IS NOT NULL")
    return f"SELECT MAX({month_number('ts', tz)}) AS month {rows}"


def logo_retention(src: Source, tz: str, span: Span | None = None) -> str:
    """The whole computation in one statement (no state): what another engine holding
    the history (BigQuery) runs."""
    return (
        f"WITH members AS ({logo_members(src, tz, span)}), "
        f"active AS ({logo_active(src, tz, span)}) "
        + logo_cells("members", "active", -(2**31))
    )


# -- funnels -------------------------------------------------------------------------------


def _is(alias: str, step: str) -> str:
    """An event of a step: its type or its kind names it."""
    return f"({alias}.type = {literal(step)} OR {alias}.kind = {literal(step)})"


def funnel_users(
    steps: Sequence[str],
    window_days: int,
    wanted: Sequence[str],
    src: Source,
    entries: str | None = None,
) -> str:
    """(product, subject, t0, reached, last_step, next) per user who entered: the entry
    instant, the instant of the last step reached (0-based ``last_step``) and, for users
    who stalled before the last step, the type they went on to (``(none)``); NULL for
    those who completed.

    ``entries`` (a relation of product, subject, t0) gives the users to follow and their
    entry instants instead of the first step-1 event in ``src`` (an incremental update
    knows them from its state and reads only the recent events)."""
    hours = literal(24 * int(window_days))
    window = f"u.t0 + INTERVAL {hours} HOUR"
    relevant = (f"subject IS NOT NULL AND (type IN {literals(wanted)} "
                f"OR kind IN {literals(wanted)})")  # fmt: skip
    ctes = [f"ev AS (SELECT product, subject, ts, type, kind, idempotency_key {src.rows(relevant)})"]
    first = entries or (
        f"(SELECT e.product AS product, e.subject AS subject, MIN(e.ts) AS t0 FROM ev AS e "
        f"WHERE {_is('e', steps[0])} GROUP BY e.product, e.subject)"
    )
    ctes.append(
        "u0 AS (SELECT f.product AS product, f.subject AS subject, f.t0 AS t0, "
        f"f.t0 AS reached, 0 AS last_step FROM {first} AS f)"
    )
    for k in range(1, len(steps)):
        # the first step-k event of each user at step k-1 (an inner join on equalities,
        # which DuckDB hashes), then every user with it or without
        ctes.append(
            f"h{k} AS (SELECT u.product AS product, u.subject AS subject, MIN(e.ts) AS hit "
            f"FROM u{k - 1} AS u JOIN ev AS e ON e.product = u.product "
            f"AND e.subject = u.subject WHERE u.last_step = {k - 1} AND {_is('e', steps[k])} "
            f"AND e.ts >= u.reached AND e.ts <= {window} GROUP BY u.product, u.subject)"
        )
        ctes.append(
            f"u{k} AS (SELECT u.product AS product, u.subject AS subject, u.t0 AS t0, "
            "COALESCE(h.hit, u.reached) AS reached, "
            f"CASE WHEN h.hit IS NULL THEN u.last_step ELSE {k} END AS last_step "
            f"FROM u{k - 1} AS u LEFT JOIN h{k} AS h ON h.product = u.product "
            "AND h.subject = u.subject)"
        )
    n = len(steps)
    final = f"u{n - 1}"
    if n < 2:
        return (f"WITH {', '.join(ctes)} SELECT product, subject, t0, reached, last_step, "
                f"CAST(NULL AS VARCHAR) AS next FROM {final}")  # fmt: skip
    step_type = "CASE u.last_step " + " ".join(
        f"WHEN {k} THEN {literal(s)}" for k, s in enumerate(steps[:-1])) + " END"  # fmt: skip
    ctes.append(
        "nxt AS (SELECT u.product AS product, u.subject AS subject, e.type AS next_type "
        f"FROM {final} AS u JOIN ev AS e ON e.product = u.product AND e.subject = u.subject "
        f"AND e.ts > u.reached AND e.ts <= {window} AND e.type <> {step_type} "
        f"WHERE u.last_step < {n - 1} "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY u.product, u.subject "
        "ORDER BY e.ts, e.idempotency_key) = 1)"
    )
    return (
        f"WITH {', '.join(ctes)} "
        "SELECT u.product AS product, u.subject AS subject, u.t0 AS t0, "
        "u.reached AS reached, u.last_step AS last_step, "
        f"CASE WHEN u.last_step < {n - 1} THEN COALESCE(x.next_type, {literal(NONE)}) "
        "END AS next "
        f"FROM {final} AS u LEFT JOIN nxt AS x ON x.product = u.product "
        "AND x.subject = u.subject"
    )


def funnel_counts(
    users: str, tz: str, since: str | None = None, span: Span | None = None
) -> str:
    """(product, month, last_step, next, users) from a relation shaped as ``funnel_users``,
    of the users who entered from ``since`` (an ISO 8601 instant: a local month's start)
    on: the step counts (sum over ``next``) and the branch counts (rows with a ``next``)
    of every cell."""
    where = "TRUE" if since is None else f"t0 >= CAST({literal(since)} AS TIMESTAMPTZ)"
    return (
        f"SELECT product, {month_number('t0', tz, span)} AS month, last_step, next, "
        f"COUNT(*) AS users FROM {users} AS users WHERE {where} GROUP BY 1, 2, 3, 4"
    )


def funnel(
    steps: Sequence[str],
    window_days: int,
    wanted: Sequence[str],
    src: Source,
    tz: str,
    span: Span | None = None,
) -> str:
    """One funnel's counts in one statement (no state): what BigQuery runs."""
    return funnel_counts(f"({funnel_users(steps, window_days, wanted, src)})", tz, span=span)


# -- traffic -------------------------------------------------------------------------------


def traffic_visitors(src: Source, tz: str, session_minutes: int) -> str:
    """(day, product, channel, visitor, micros, signups, converting, events): the session
    and signup events per local day number (``day_number``), product, channel and
    visitor (the subject of sessions; NULL for signups and aggregate sessions): ``micros``
    the sessions' ``value`` in micro-units, ``signups`` each attributed to its session's
    channel (its own if none), ``converting`` the sessions a signup was attributed to,
    ``events`` the input events of the row. Each signup's session is found by a hash
    join on (product, subject) with the time condition, the latest first (``QUALIFY``):
    signups are few, a user's sessions within the half hour fewer."""
    minutes = literal(int(session_minutes))
    ev = (f"SELECT product, type, ts, subject, channel, idempotency_key AS k, "
          "CAST(CAST(coalesce(value, 0) AS DECIMAL(38, 6)) * 1000000 AS BIGINT) AS micros, "
          f"{day_number('ts', tz)} AS day "
          + src.rows("type IN ('session', 'signup')"))  # fmt: skip
    ctes = [
        f"ev AS ({ev})",
        # each signup's session: the user's latest at most ``minutes`` before it
        "hit AS (SELECT g.k AS signup, s.k AS session, s.channel AS channel FROM ev AS g "
        "JOIN ev AS s ON s.product = g.product AND s.subject = g.subject "
        f"AND s.ts <= g.ts AND s.ts >= g.ts - INTERVAL {minutes} MINUTE "
        "WHERE g.type = 'signup' AND s.type = 'session' AND g.subject IS NOT NULL "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY g.k ORDER BY s.ts DESC, s.k DESC) = 1)",
        "conv AS (SELECT DISTINCT session FROM hit)",
        # a signup takes its session's channel (its own if that has none)
        "r AS (SELECT e.day AS day, e.product AS product, "
        "CASE WHEN e.type = 'signup' AND h.channel IS NOT NULL THEN h.channel "
        "ELSE e.channel END AS channel, "
        "CASE WHEN e.type = 'session' THEN e.micros ELSE 0 END AS micros, "
        "CASE WHEN e.type = 'signup' THEN 1 ELSE 0 END AS signups, "
        "CASE WHEN c.session IS NULL THEN 0 ELSE 1 END AS converting, "
        "CASE WHEN e.type = 'session' THEN e.subject END AS visitor "
        "FROM ev AS e LEFT JOIN hit AS h ON h.signup = e.k "
        "LEFT JOIN conv AS c ON c.session = e.k)",
    ]
    return (f"WITH {', '.join(ctes)} SELECT day, product, channel, visitor, "
            "CAST(sum(micros) AS BIGINT) AS micros, CAST(sum(signups) AS BIGINT) AS signups, "
            "CAST(sum(converting) AS BIGINT) AS converting, CAST(count(*) AS BIGINT) AS events "
            "FROM r GROUP BY day, product, channel, visitor")  # fmt: skip


def traffic_counts(visitors: str) -> str:
    """(day, product, channel, micros, visitors, signups, converting, events) from a
    relation shaped as ``traffic_visitors``: per product and channel, with the
    ``channel = 'all'`` and ``product = 'all'`` rows (``growthwatch.metrics.traffic.ALL``)
    and ``visitors`` distinct per product (the portfolio counts a person once per
    product, as the pandas definition does); ``events`` on the products' ``channel =
    'all'`` rows only (NULL elsewhere): what was read."""
    ctes = [
        f"pv AS (SELECT * FROM {visitors})",
        "pa AS (SELECT day, product, sum(micros) AS micros, sum(signups) AS signups, "
        "sum(converting) AS converting, sum(events) AS events FROM pv GROUP BY day, product)",
        "va AS (SELECT day, product, count(DISTINCT visitor) AS visitors FROM pv "
        "GROUP BY day, product)",
    ]
    sums = ("CAST(sum(micros) AS BIGINT) AS micros, count(visitor) AS visitors, "
            "CAST(sum(signups) AS BIGINT) AS signups, "
            "CAST(sum(converting) AS BIGINT) AS converting")  # fmt: skip
    parts = [
        # per product and channel: (visitor) rows are distinct in pv
        f"SELECT day, product, channel, {sums}, CAST(NULL AS BIGINT) AS events FROM pv "
        "WHERE channel IS NOT NULL GROUP BY day, product, channel",
        # per product, every channel
        "SELECT a.day, a.product, 'all', CAST(a.micros AS BIGINT), "
        "CAST(coalesce(v.visitors, 0) AS BIGINT), CAST(a.signups AS BIGINT), "
        "CAST(a.converting AS BIGINT), CAST(a.events AS BIGINT) FROM pa AS a "
        "LEFT JOIN va AS v ON v.day = a.day AND v.product = a.product",
        # the portfolio per channel: (product, visitor) pairs are distinct in pv
        f"SELECT day, 'all', channel, {sums}, CAST(NULL AS BIGINT) FROM pv "
        "WHERE channel IS NOT NULL GROUP BY day, channel",
        # the portfolio, every channel
        "SELECT a.day, 'all', 'all', CAST(sum(a.micros) AS BIGINT), "
        "CAST(coalesce(sum(v.visitors), 0) AS BIGINT), CAST(sum(a.signups) AS BIGINT), "
        "CAST(sum(a.converting) AS BIGINT), CAST(NULL AS BIGINT) FROM pa AS a "
        "LEFT JOIN va AS v ON v.day = a.day AND v.product = a.product GROUP BY a.day",
    ]
    return f"WITH {', '.join(ctes)} " + " UNION ALL ".join(parts)


def traffic(src: Source, tz: str, session_minutes: int) -> str:
    """The traffic counts in one statement (``traffic_counts`` of ``traffic_visitors``):
    what another engine holding the history (BigQuery) runs. The ledger runs the two
    steps with a temporary table between them (``sql.traffic_counts``): DuckDB 1.5 hung
    on this one statement over 10M events (its executor waiting for a task no thread
    ran), and each step alone is faster than the CTEs recomputed per branch."""
    return traffic_counts(f"({traffic_visitors(src, tz, session_minutes)})")


# -- signups and activations ---------------------------------------------------------------


def signup_counts(src: Source, tz: str, window_days: int) -> str:
    """(product, day, signups, activations, activated) per local day number with a signup
    or an activation: the distinct users who signed up that day, who activated that day,
    and of the day's signups those with an activation within the window after their
    signup (``engagement.product_daily``'s definitions; the window as whole hours, not
    calendar days, as the pandas ``Timedelta``)."""
    hours = literal(24 * int(window_days))
    ev = (f"SELECT product, subject, type, ts, {day_number('ts', tz)} AS day "
          + src.rows("type IN ('signup', 'activation') AND subject IS NOT NULL"))  # fmt: skip
    ctes = [
        f"ev AS ({ev})",
        "s AS (SELECT product, subject, ts, day FROM ev WHERE type = 'signup')",
        "a AS (SELECT product, subject, ts, day FROM ev WHERE type = 'activation')",
        "ok AS (SELECT DISTINCT s.product AS product, s.subject AS subject, s.day AS day "
        "FROM s JOIN a ON a.product = s.product AND a.subject = s.subject "
        f"AND a.ts >= s.ts AND a.ts <= s.ts + INTERVAL {hours} HOUR)",
        "rows AS (SELECT product, day, count(DISTINCT subject) AS signups, 0 AS activations, "
        "0 AS activated FROM s GROUP BY product, day "
        "UNION ALL SELECT product, day, 0, count(DISTINCT subject), 0 FROM a "
        "GROUP BY product, day "
        "UNION ALL SELECT product, day, 0, 0, count(*) FROM ok GROUP BY product, day)",
    ]
    return (f"WITH {', '.join(ctes)} SELECT product, day, CAST(sum(signups) AS BIGINT) AS "
            "signups, CAST(sum(activations) AS BIGINT) AS activations, "
            "CAST(sum(activated) AS BIGINT) AS activated FROM rows GROUP BY product, day "
            "ORDER BY product, day")  # fmt: skip


# -- revenue -------------------------------------------------------------------------------


def revenue(src: Source, freq: str, tz: str) -> str:
    """(bucket, product, currency, gross, refunds, failed, payments, refund_count,
    failed_count) of the money events: ``bucket`` a local day number (``freq`` "D") or
    whole UTC hours since the epoch ("h"), amounts in micro-units (exact: the ledger
    holds DECIMAL(18, 6)). Events without a currency are left out, as pandas' group-by
    leaves them."""
    if freq == "D":
        bucket = day_number("ts", tz)
    elif freq == "h":
        bucket = "date_diff('hour', TIMESTAMP '1970-01-01 00:00:00', ts AT TIME ZONE 'UTC')"
    else:
        raise ValueError(f"revenue buckets are days or hours, not {freq!r}")
    amount = "CAST(CAST(coalesce(value, 0) AS DECIMAL(38, 6)) * 1000000 AS BIGINT)"

    def total(kind: str) -> str:
        return f"CAST(sum(CASE WHEN type = {literal(kind)} THEN {amount} ELSE 0 END) AS BIGINT)"

    def counted(kind: str) -> str:
        return f"CAST(sum(CASE WHEN type = {literal(kind)} THEN 1 ELSE 0 END) AS BIGINT)"

    rows = src.rows("type IN ('payment', 'refund', 'payment_failed') AND currency IS NOT NULL")
    return (
        f"SELECT {bucket} AS bucket, product, currency, {total('payment')} AS gross, "
        f"{total('refund')} AS refunds, {total('payment_failed')} AS failed, "
        f"{counted('payment')} AS payments, {counted('refund')} AS refund_count, "
        f"{counted('payment_failed')} AS failed_count {rows} GROUP BY 1, 2, 3"
    )
