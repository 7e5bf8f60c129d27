"""The pipeline every face uses, written once.

    snapshot.py       load -> observe -> merge history -> plan
    apply_session.py  lock -> resume in-flight -> apply -> record
    saved_plan.py     read a plan file; check it against Azure and against a fresh plan
    state.py          parse --state once; open the local or blob journal and lock

The CLI commands, the controller loop and the benchmarks call these; none of them reaches into
`azure/`, `state/` or `planning/` to compose the flow itself.
"""
