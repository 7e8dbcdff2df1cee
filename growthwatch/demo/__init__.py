"""Deterministic demo data: a portfolio of subscription products with labelled incidents.

The public API lives in ``growthwatch.demo.generator``; the sibling modules hold its parts
(spec and random streams, product catalog, incidents, subscription lifecycles, product
analytics) so each can be read and tested on its own.
"""
