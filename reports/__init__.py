"""The monthly board report: collect (numbers from a ``SeriesReader``), render (one HTML
template with SVG charts, and the PDF made from it), deliver (apprise), schedule (inside
``growthwatch serve``). Each step is its own module so a test can check one without the
others; ``reports.build.build_report`` strings them together for the CLI, the demo, the
service and the benchmark.
"""
