"""Anomaly detection over the metric series (the detector service)."""
