"""Checks of the operator's kit (deploy/k8s/components/operator-kit), shared with test_k8s's renders.

An alert rule is checked as ``promtool check rules`` checks it: its PromQL parses (Prometheus's
grammar, `promql_parser`), its ``for`` is a duration, its labels and annotations are strings,
names unique in a group. Every metric a rule or a dashboard's panel names must be one the mesh
exports (`exported_series`), so a renamed metric breaks the test, not the 3 a.m. page.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import promql_parser
from prometheus_client import REGISTRY

# Importing the servers registers every metric of the mesh (each module declares its own).
import gateway.app
import gateway.workers
import services.cnaf.app

__all__ = ["check_prometheus_rule", "exported_series", "metrics_named"]

_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}
PROMETHEUS_OWN = frozenset({"up"})
"""Series Prometheus itself makes for each target."""


@cache
def exported_series() -> frozenset[str]:
    """Every series name the mesh's processes export (a counter's ``_total``, a histogram's ``_bucket``…)."""
    assert gateway.app and gateway.workers and services.cnaf.app  # imported for their metrics
    names = set(PROMETHEUS_OWN)
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return frozenset(names)


def metrics_named(expr: str) -> set[str]:
    """The metric names a PromQL expression selects.

    Raises:
        ValueError: the expression does not parse.
    """
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                found.add(node.name)
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for argument in node.args:
                walk(argument)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(node, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
            walk(node.expr)

    walk(promql_parser.parse(expr))
    return found


def check_prometheus_rule(rule: dict[str, Any]) -> None:
    """monitoring.coreos.com/v1 PrometheusRule: what promtool checks, and metrics the mesh exports."""
    groups = rule["spec"]["groups"]
    assert groups, "a PrometheusRule needs groups"
    assert len({group["name"] for group in groups}) == len(groups), "group names must be unique"
    for group in groups:
        names = [entry.get("alert") or entry.get("record") for entry in group["rules"]]
        assert all(names) and len(set(names)) == len(names), f"{group['name']}: unnamed or repeated rules"
        for entry in group["rules"]:
            where = f"{group['name']}/{names[group['rules'].index(entry)]}"
            try:
                selected = metrics_named(entry["expr"])
            except ValueError as error:
                raise AssertionError(f"{where}: the expression does not parse: {error}") from None
            unknown = selected - exported_series()
            assert not unknown, f"{where}: names metrics the mesh does not export: {sorted(unknown)}"
            if "for" in entry:
                assert _DURATION.fullmatch(entry["for"]), f"{where}: `for` is not a duration"
            for field in ("labels", "annotations"):
                assert all(isinstance(value, str) for value in entry.get(field, {}).values()), where
            if "alert" in entry:
                assert entry["labels"].get("severity") in {"critical", "warning"}, where
                assert entry["annotations"].get("summary"), f"{where}: no summary"
