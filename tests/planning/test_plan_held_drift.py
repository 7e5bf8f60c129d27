"""`settings.drift: report` (controller.planning.held), as an invariant over capacities, billing types
and tags: what the spec changed since the last apply is always planned; what only the live side
changed is reported and never planned; `correct` plans everything back."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from plan_builders import NOW, cluster, desired, obs_cluster, observed, plan

from controller.model.history import AppliedResource
from controller.model.spec import Cluster
from controller.planning.held import baseline_of, cluster_intent, cluster_record_key, hold

CAPACITIES = st.sampled_from([500, 1000, 2000, 5000])  # tiers of both profiles
BILLING = st.sampled_from(["Cluster", "Workspaces"])
TAGS = st.sampled_from([{}, {"team": "obs"}, {"team": "other"}])


@settings(max_examples=60, deadline=None)
@given(
    applied=st.tuples(CAPACITIES, BILLING, TAGS),  # what the last apply declared and left
    spec=st.tuples(CAPACITIES, BILLING, TAGS),  # the spec now
    live=st.tuples(CAPACITIES, BILLING, TAGS),  # Azure now
)
def test_only_fields_changed_outside_and_unchanged_in_the_spec_are_held(
    applied: tuple[int, str, dict[str, str]],
    spec: tuple[int, str, dict[str, str]],
    live: tuple[int, str, dict[str, str]],
) -> None:
    def declared(values: tuple[int, str, dict[str, str]]) -> Cluster:
        return cluster(capacity=values[0], billing=values[1], tags=values[2])

    before = declared(applied)
    record = AppliedResource(
        key=cluster_record_key(before.arm_id),
        revision="r1",
        at=NOW,
        intent=cluster_intent(before),
        baseline=baseline_of(obs_cluster(before)),
    )
    now_spec = declared(spec)
    d = desired([now_spec])
    live_cluster = replace(
        obs_cluster(now_spec),
        capacity=live[0],
        billing_type=live[1],
        tags=dict(live[2]),
        last_sku_update=NOW.replace(year=2025),  # no C4 lock: a decrease would be planned now
    )
    o = observed([live_cluster])
    records = {record.key: record}

    planned_from, held = hold(d, o, records, correct=False)
    held_fields = {h.field for h in held}
    expected = {
        name
        for name, a, s, lv in zip(("capacity", "billing_type", "tags"), applied, spec, live, strict=True)
        if a == s and lv != a and lv != s
    }
    assert held_fields == expected
    p = plan(d, planned_from)
    touched = {k for c in p.changes for k, v in c.parameters
               if v is not None and k in ("capacity", "billing_type", "tags")}
    assert not (touched & held_fields)  # a held field is never planned
    for name, a, s, lv in zip(("capacity", "billing_type", "tags"), applied, spec, live, strict=True):
        if s != a and lv != s:  # the spec changed it: always planned
            assert name in touched
    assert hold(d, o, records, correct=True) == (o, ())  # correct: nothing is held
    assert hold(d, o, {}, correct=False) == (o, ())  # nothing applied yet: nothing is held
