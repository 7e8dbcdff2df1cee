"""Growth metrics: pure functions from event frames to metric point batches."""
