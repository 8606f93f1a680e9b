"""A Local decision pins its pods to the nodes it was given, ANDed with the Job's own affinity."""

from scheduler.placement import pin_to_nodes
from sim.sandbox.selectors import node_fits

PIN = {"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}


def node(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}}


def test_a_template_without_affinity_gets_one_term_on_the_node_names():
    patch = pin_to_nodes({"nodeSelector": {"gpu": "a100"}}, ("n2", "n1", "n2"))
    terms = patch["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchFields": [PIN]}]
    spec = {"nodeSelector": {"gpu": "a100"}, **patch}
    assert node_fits(spec, node("n1", gpu="a100")) and not node_fits(spec, node("n3", gpu="a100"))
    assert not node_fits(spec, node("n2", gpu="t4")), "the Job's own node selector still holds"


def test_every_existing_required_term_is_narrowed_and_pinning_twice_changes_nothing():
    own = {"affinity": {"podAffinity": {"x": 1}, "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]}}}
    patch = pin_to_nodes(own, ("n1", "n2"))
    terms = patch["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [t["matchFields"] for t in terms] == [[PIN], [PIN]]
    assert [t["matchExpressions"][0]["values"] for t in terms] == [["a"], ["b"]]
    spec = {"affinity": {**own["affinity"], "nodeAffinity": {**own["affinity"]["nodeAffinity"],
                                                            **patch["affinity"]["nodeAffinity"]}}}
    assert node_fits(spec, node("n2", zone="b")) and not node_fits(spec, node("n3", zone="b"))
    assert not node_fits(spec, node("n1", zone="c"))
    assert pin_to_nodes(spec, ("n1", "n2")) == patch
