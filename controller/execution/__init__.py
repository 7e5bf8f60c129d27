"""Applying a plan: the executor (DAG walk, journal, resume, retries) and its progress display."""
