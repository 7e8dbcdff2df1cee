-- User lifecycle counts per product and period (growthwatch.metrics.lifecycle).
--
-- A period is a local day of the reporting timezone, numbered from the epoch, or an ISO
-- week (Monday to Sunday): floor((day + 3) / 7), 1970-01-01 being a Thursday. Each user
-- active in period k is new (their first activity ever is in k), returning (active in
-- k - 1 too) or resurrected (neither); a user active in k and not in k + 1 is dormant in
-- k + 1. Only one row per product and period leaves the database.
--
-- Parameters, in order: the IANA zone, 7 for weeks or 1 for days, 3 for weeks or 0 for
-- days (the Monday shift), then those of the two placeholders: the activity filters
-- (from where the periods are counted) and the history filters (the first activity is
-- over everything before the end, with the same zone and period parameters again). The
-- users placeholder narrows the history to the users of the activity counted, when that
-- starts late (an update): a full run reads the history once, without the semi-join.
WITH activity AS (
    SELECT DISTINCT
        product,
        subject,
        CAST(floor((date_diff('day', DATE '1970-01-01', CAST(ts AT TIME ZONE ? AS DATE)) + ?) / ?)
            AS BIGINT) AS k
    FROM events
    WHERE type = 'active_use' AND subject IS NOT NULL {activity_filters}
),
firsts AS (
    SELECT
        product,
        subject,
        CAST(floor((date_diff('day', DATE '1970-01-01', CAST(min(ts) AT TIME ZONE ? AS DATE)) + ?)
            / ?) AS BIGINT) AS first_k
    FROM events
    WHERE type = 'active_use' AND subject IS NOT NULL {history_filters} {users_filter}
    GROUP BY product, subject
),
flagged AS (
    SELECT
        a.product,
        a.k,
        f.first_k,
        lag(a.k) OVER (PARTITION BY a.product, a.subject ORDER BY a.k) AS prev_k,
        lead(a.k) OVER (PARTITION BY a.product, a.subject ORDER BY a.k) AS next_k
    FROM activity AS a
    JOIN firsts AS f ON a.product = f.product AND a.subject = f.subject
),
counts AS (
    SELECT
        product,
        k,
        count(*) AS active,
        count(*) FILTER (WHERE k = first_k) AS new,
        count(*) FILTER (WHERE prev_k = k - 1) AS "returning",
        count(*) FILTER (WHERE k <> first_k AND (prev_k IS NULL OR prev_k <> k - 1))
            AS resurrected,
        0 AS dormant
    FROM flagged
    GROUP BY product, k
    UNION ALL
    SELECT product, k + 1 AS k, 0, 0, 0, 0, count(*) AS dormant
    FROM flagged
    WHERE next_k IS NULL OR next_k <> k + 1
    GROUP BY product, k + 1
)
SELECT
    product,
    k,
    sum(active) AS active,
    sum(new) AS new,
    sum("returning") AS "returning",
    sum(resurrected) AS resurrected,
    sum(dormant) AS dormant
FROM counts
GROUP BY product, k
ORDER BY product, k
