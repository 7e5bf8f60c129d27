"""`make demo` (python -m demo): the product's main job, end to end, on the embedded example fleet."""
