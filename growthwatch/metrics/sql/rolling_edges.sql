-- Rolling distinct active users (DAU, WAU, MAU) as interval edges per product and day.
--
-- Each active user-day covers the days up to its window (1, 7 or 30 days) or the user's
-- next active day, whichever comes first: +1 on the day it starts, -1 on the day it
-- stops. Summed per (product, day), a running sum over the days gives every day's
-- distinct users (growthwatch.metrics.engagement.product_daily), so the events stay in
-- the database: out of memory only one row per product and day leaves it.
--
-- Days are local days of the reporting timezone, numbered from the epoch: the day of an
-- instant is the days from 1970-01-01 to its wall-clock date. The filters placeholder takes the
-- caller's extra conditions on the events (a time range, products left out); the first
-- parameter is the IANA zone.
WITH user_days AS (
    SELECT DISTINCT
        product,
        subject,
        date_diff('day', DATE '1970-01-01', CAST(ts AT TIME ZONE ? AS DATE)) AS day
    FROM events
    WHERE type = 'active_use' AND subject IS NOT NULL {filters}
),
spans AS (
    SELECT
        product,
        day,
        lead(day) OVER (PARTITION BY product, subject ORDER BY day) AS next_day
    FROM user_days
),
edges AS (
    SELECT product, day, 1 AS dau, 1 AS wau, 1 AS mau FROM spans
    UNION ALL
    SELECT product, day + 1 AS day, -1 AS dau, 0 AS wau, 0 AS mau FROM spans
    UNION ALL
    SELECT product, least(day + 7, coalesce(next_day, day + 7)) AS day, 0 AS dau, -1 AS wau,
        0 AS mau
    FROM spans
    UNION ALL
    SELECT product, least(day + 30, coalesce(next_day, day + 30)) AS day, 0 AS dau, 0 AS wau,
        -1 AS mau
    FROM spans
)
SELECT product, day, sum(dau) AS dau, sum(wau) AS wau, sum(mau) AS mau
FROM edges
GROUP BY product, day
ORDER BY product, day
