"""Source exporters: each source's own records turned into growth events, exactly once."""
