"""One module per board; each has ``FILE`` (the JSON file name) and ``build()``.

``BOARDS`` is the order of ``growthwatch dashboards build``; adding a board is adding a
module here.
"""

from __future__ import annotations

BOARDS = (
    "dashboards.boards.portfolio",
    "dashboards.boards.product",
    "dashboards.boards.revenue",
    "dashboards.boards.retention",
    "dashboards.boards.anomalies",
    "dashboards.boards.pipeline",
)
