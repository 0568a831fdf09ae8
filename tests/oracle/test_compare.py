"""The oracle's comparison on its own: what counts as a difference, and what a deviation accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.oracle.injection import (
    ABSENT,
    Deviation,
    Difference,
    OracleError,
    comparable,
    differences,
    load_deviations,
    script_effect,
    unexplained,
    unneeded,
)


def pod(containers: list[dict], annotations: dict | None = None) -> dict:
    return {"spec": {"template": {"metadata": {"annotations": annotations or {}}, "spec": {"containers": containers}}}}


def test_env_values_holding_json_compare_parsed_so_layout_and_key_order_do_not_count() -> None:
    istio = pod([{"name": "istio-proxy", "env": [{"name": "PROXY_CONFIG", "value": '{"a": 1, "b": [1, 2]}\n'}]}])
    ours = pod([{"name": "istio-proxy", "env": [{"name": "PROXY_CONFIG", "value": '{"b":[1,2],"a":1}'}]}])
    assert list(differences(comparable(istio), comparable(ours))) == []


def test_a_changed_json_field_is_named_inside_the_env_value() -> None:
    istio = pod([{"name": "istio-proxy", "env": [{"name": "PROXY_CONFIG", "value": '{"concurrency": 2}'}]}])
    ours = pod([{"name": "istio-proxy", "env": [{"name": "PROXY_CONFIG", "value": '{"concurrency": 0}'}]}])
    assert [str(d) for d in differences(comparable(istio), comparable(ours))] == [
        "spec.template.spec.containers[istio-proxy].env[PROXY_CONFIG].value.concurrency: Istio 1.12 2, this chart 0"
    ]


def test_named_lists_compare_by_name_and_report_missing_items_and_order() -> None:
    istio = pod([{"name": "app"}, {"name": "istio-proxy", "env": [{"name": "A", "value": "1"}]}])
    ours = pod(
        [{"name": "istio-proxy", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}, {"name": "app"}]
    )
    found = list(differences(comparable(istio), comparable(ours)))
    assert found == [
        Difference("spec.template.spec.containers[istio-proxy].env[B]", ABSENT, {"name": "B", "value": "2"}),
        Difference("spec.template.spec.containers (order)", ["app", "istio-proxy"], ["istio-proxy", "app"]),
    ]


def test_a_name_set_twice_is_kept_apart_not_collapsed() -> None:
    istio = pod([{"name": "p", "env": [{"name": "X", "value": "1"}, {"name": "X", "value": "2"}]}])
    ours = pod([{"name": "p", "env": [{"name": "X", "value": "1"}]}])
    assert [d.path for d in differences(comparable(istio), comparable(ours))] == [
        "spec.template.spec.containers[p].env[X#2]"
    ]


def test_json_annotations_compare_parsed() -> None:
    istio = pod([], {"sidecar.istio.io/status": '{"containers":["istio-proxy"],"revision":"default"}'})
    ours = pod([], {"sidecar.istio.io/status": '{"revision": "default", "containers": ["istio-proxy"]}'})
    assert list(differences(comparable(istio), comparable(ours))) == []


def test_a_bootstrap_script_compares_by_the_file_it_writes() -> None:
    env = [
        {"name": "NS", "value": "istio-system"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    effect = script_effect(
        'echo \'{"ns": "\'${NS}\'", "pod": "\'${POD_NAME}\'"}\' > /var/lib/grpc/data/bootstrap.json', env
    )
    assert effect == {"exit": 0, "bootstrap.json": {"ns": "istio-system", "pod": "<metadata.name>"}}
    heredoc = 'cat > /var/lib/grpc/data/bootstrap.json <<EOF\n{"pod": "${POD_NAME}", "ns": "${NS}"}\nEOF'
    assert script_effect(heredoc, env) == effect


def test_a_deviation_accepts_exactly_its_field_and_both_values() -> None:
    deviation = Deviation("ns-newline", "*.env[ISTIO_NAMESPACE].value", "istio-system\n", "istio-system")
    exact = Difference(
        "spec.template.spec.initContainers[init].env[ISTIO_NAMESPACE].value", "istio-system\n", "istio-system"
    )
    assert deviation.accepts(exact, variant="default", workload="w")
    assert not deviation.accepts(Difference(exact.path, "istio-system\n", "other"), variant="default", workload="w")
    assert not deviation.accepts(
        Difference(exact.path + "x", "istio-system\n", "istio-system"), variant="d", workload="w"
    )
    only_default = Deviation("x", exact.path, "istio-system\n", "istio-system", variants=("default",))
    assert not only_default.accepts(exact, variant="tuned", workload="w")


def test_a_deviation_can_say_one_side_has_no_such_field() -> None:
    deviation = Deviation("added", "spec.x", ABSENT, "on")
    assert deviation.accepts(Difference("spec.x", ABSENT, "on"), variant="v", workload="w")
    assert not deviation.accepts(Difference("spec.x", "<absent>", "on"), variant="v", workload="w")


def test_deviations_file_entries_need_name_path_and_both_values(tmp_path: Path) -> None:
    path = tmp_path / "deviations.yaml"
    path.write_text("- {name: x, path: spec.x, istio: 1}\n")
    with pytest.raises(OracleError, match=r"entry 0 lacks ours"):
        load_deviations(path)


def test_an_entry_that_matches_nothing_is_unneeded_even_when_another_entry_of_its_name_matches() -> None:
    """Deviations are counted by entry: a stale entry sharing its name with a needed one is still found."""
    entries = [Deviation("common", "a.b", 1, 2), Deviation("common", "a.c", 1, 2)]
    left, used = unexplained({"a": {"b": 1}}, {"a": {"b": 2}}, entries, variant="v", workload="w")
    assert left == [] and used == {0}
    assert unneeded(entries, used) == ["entry 1 (common: a.c)"]
