"""The operator's kit: alert rules that Prometheus would load, dashboards that query what the mesh exports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.deploy.operator_kit import check_prometheus_rule, exported_series, metrics_named

KIT = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "components" / "operator-kit"
DASHBOARDS = sorted((KIT / "dashboards").glob("*.json"))
EXPECTED_ALERTS = {
    "ProviderDown",
    "ProviderErrorRatioHigh",
    "JournalRefusingCalls",
    "JournalBehind",
    "JournalPostgresUnreachable",
    "RedisUnreachable",
    "RestConnectionCapReached",
    "GatewayWorkerRestarted",
    "TokensExpiringSoon",
}


def rule() -> dict:  # type: ignore[type-arg]
    document: dict = yaml.safe_load((KIT / "alert-rules.yaml").read_text())  # type: ignore[type-arg]
    return document


def test_the_alert_rules_load_and_name_exported_metrics() -> None:
    check_prometheus_rule(rule())
    alerts = {entry.get("alert") for group in rule()["spec"]["groups"] for entry in group["rules"]}
    assert alerts >= EXPECTED_ALERTS


def test_a_broken_rule_is_refused() -> None:
    """The check itself: a typo in a metric name, or PromQL that does not parse, fails it."""
    broken = rule()
    broken["spec"]["groups"][0]["rules"][0]["expr"] = "rate(gateway_provider_error_total[5m]) > 0"
    with pytest.raises(AssertionError, match="does not export"):
        check_prometheus_rule(broken)
    broken["spec"]["groups"][0]["rules"][0]["expr"] = "sum(rate(gateway_provider_errors_total[5m])"
    with pytest.raises(AssertionError, match="does not parse"):
        check_prometheus_rule(broken)


def test_the_kustomization_ships_every_dashboard() -> None:
    kustomization = yaml.safe_load((KIT / "kustomization.yaml").read_text())
    files = [f for generator in kustomization["configMapGenerator"] for f in generator["files"]]
    assert sorted(files) == [f"dashboards/{path.name}" for path in DASHBOARDS]


@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_each_panel_queries_metrics_the_mesh_exports(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["panels"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            named = metrics_named(target["expr"])
            assert named, f"{panel['title']}: a query naming no metric"
            assert named <= exported_series(), f"{panel['title']}: {sorted(named - exported_series())}"
