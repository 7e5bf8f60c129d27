"""The long-running controller loop (planned): observe, plan, apply or report drift, requeue.

Empty for now; the package exists so that the import-linter contracts, which name it, can run.
"""
