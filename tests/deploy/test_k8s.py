"""The Kubernetes manifests of deploy/k8s, rendered and checked offline.

Every overlay, and the base with every combination of the components, is
rendered with ``kubectl kustomize``. Each rendered object is validated against
the Kubernetes JSON schemas shipped by ``kubernetes-validate`` (strict: unknown
fields are errors); the CRD objects those schemas lack (cert-manager
Certificate, Prometheus Operator ServiceMonitor and PrometheusRule) have their
required fields checked by hand. Then the deployment rules are checked on every render: probes,
resources, security contexts, grace periods, disruption budgets, spreading, the
gateway's autoscaler, Secrets kept out of the manifests, pinned images.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from runtime.settings import ServerSettings
from tests.deploy.operator_kit import check_prometheus_rule

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl")
# The Kubernetes version whose schemas the manifests must satisfy: native gRPC probes are GA
# since 1.27, matchLabelKeys in topology spread is on by default since 1.27.
KUBERNETES_VERSION = "1.32"
UID = 10001
# Mesh processes (our image) versus other workloads (Redis).
MESH_COMPONENTS = {"gateway", "provider"}
# Names of settings that hold a secret and so must come from a Secret, never a literal.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|HMAC|API_KEY|TOKEN$|PRIVATE")
MTLS_PROBE = "/etc/apiparticulier/probe/grpc_health_check.py"

Obj = dict[str, Any]

if KUBECTL is None:
    pytest.skip("kubectl is not installed: deploy/k8s is not rendered", allow_module_level=True)

# kubernetes_validate reads and parses its schema files on every object it checks (the definitions
# alone are 1.3 MB of JSON: 20 ms an object, hundreds of objects); they do not change during a run.
kubernetes_validate.utils.schema_contents = cache(kubernetes_validate.utils.schema_contents)

# The first test of a process renders every scenario (tens of kubectl runs): more than one test's time.
pytestmark = pytest.mark.timeout(300)

_RENDERS = K8S.parents[1] / ".run" / "test-cache" / "k8s"
"""Renders shared by the test processes of a run, by the digest of deploy/k8s: each made once."""


def _components() -> list[str]:
    return sorted(p.parent.name for p in (K8S / "components").glob("*/kustomization.yaml"))


ADDITIVE = {"operator-kit"}
"""Components that only add objects of their own and patch nothing: rendered alone on the base
and with every other component, not in each combination (each one doubles the renders)."""


def _scenarios() -> list[str]:
    """``overlay:<name>`` for each overlay, ``base+a+b`` for each set of patching components."""
    names = [f"overlay:{p.parent.name}" for p in sorted((K8S / "overlays").glob("*/kustomization.yaml"))]
    components = [name for name in _components() if name not in ADDITIVE]
    for size in range(len(components) + 1):
        names += ["+".join(["base", *combo]) for combo in itertools.combinations(components, size)]
    additive = sorted(ADDITIVE & set(_components()))
    names += [f"base+{name}" for name in additive]
    if additive:
        names.append("+".join(["base", *_components()]))
    return names


SCENARIOS = _scenarios()


@cache
def _manifests_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in K8S.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(K8S)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _render(scenario: str, scratch: Path) -> list[Obj]:
    """The objects of ``scenario``, rendered by the first test process that needs them."""
    kept = _RENDERS / _manifests_digest() / f"{scenario}.yaml"
    kept.parent.mkdir(parents=True, exist_ok=True)
    with kept.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not kept.exists():
            partial = kept.with_suffix(f".{os.getpid()}")
            partial.write_text(_kustomize(scenario, scratch))
            partial.replace(kept)
    return [doc for doc in yaml.load_all(kept.read_text(), Loader=yaml.CSafeLoader) if doc]


def _kustomize(scenario: str, scratch: Path) -> str:
    if scenario.startswith("overlay:"):
        directory = K8S / "overlays" / scenario.removeprefix("overlay:")
    else:
        # kustomize refuses absolute paths: the scratch kustomization points back relatively.
        directory = scratch / scenario
        directory.mkdir()
        up = Path(os.path.relpath(K8S, directory))
        _, *components = scenario.split("+")
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [str(up / "base")],
            "components": [str(up / "components" / c) for c in components],
        }
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, f"{scenario} does not render:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def rendered() -> Iterator[dict[str, list[Obj]]]:
    """Every scenario rendered once, two at a time (each kubectl is one process)."""
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(max_workers=2) as pool:
        renders = pool.map(lambda s: _render(s, Path(scratch)), SCENARIOS)
        yield dict(zip(SCENARIOS, renders, strict=True))


# -- helpers -------------------------------------------------------------------------------------


def _of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def _named(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [o for o in _of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def _workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in {"Deployment", "StatefulSet"}]


def _is_mesh(workload: Obj) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return labels.get("app.kubernetes.io/component") in MESH_COMPONENTS


def _component(workload: Obj) -> str | None:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels.get("app.kubernetes.io/component")


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _environment(container: Obj, objects: list[Obj]) -> dict[str, str]:
    """The literal environment of a container: its ConfigMaps, then its own `value`s on top."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(_named(objects, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
    return env


def _secret_mounts(workload: Obj, container: Obj) -> list[str]:
    volumes = workload["spec"]["template"]["spec"].get("volumes", [])
    secret_volumes = {v["name"] for v in volumes if "secret" in v}
    return [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in secret_volumes]


def _pre_stop_seconds(container: Obj) -> float:
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    return float(command[1]) if command[:1] == ["sleep"] else 0.0


def _check_certificate(cert: Obj) -> None:
    """cert-manager.io/v1 Certificate: the fields its CRD requires, and ours."""
    spec = cert["spec"]
    assert spec.get("secretName"), "a Certificate needs spec.secretName"
    assert spec.get("issuerRef", {}).get("name"), "a Certificate needs spec.issuerRef.name"
    assert spec["issuerRef"].get("kind") in {"Issuer", "ClusterIssuer"}
    assert any(spec.get(k) for k in ("commonName", "dnsNames", "uris", "ipAddresses", "emailAddresses"))
    known_usages = {"digital signature", "key encipherment", "server auth", "client auth"}
    assert set(spec.get("usages", [])) <= known_usages


def _check_service_monitor(monitor: Obj) -> None:
    """monitoring.coreos.com/v1 ServiceMonitor: selector and endpoints by port name."""
    spec = monitor["spec"]
    assert "selector" in spec, "a ServiceMonitor needs spec.selector"
    assert spec.get("endpoints"), "a ServiceMonitor needs at least one endpoint"
    assert all(e.get("port") == "metrics" for e in spec["endpoints"])


CRD_CHECKS = {
    ("cert-manager.io/v1", "Certificate"): _check_certificate,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _check_service_monitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): check_prometheus_rule,
}


@cache
def _validate_schema(document: str) -> None:
    """Schema-check one object (as canonical JSON, so that objects shared by scenarios run once)."""
    obj = json.loads(document)
    crd_check = CRD_CHECKS.get((obj["apiVersion"], obj["kind"]))
    if crd_check is not None:
        crd_check(obj)
        return
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{obj['kind']} {obj['metadata'].get('name')}: {error.message} at {list(error.path)}")


# -- the checks ----------------------------------------------------------------------------------


def test_components_are_components():
    assert _components(), "no component found under deploy/k8s/components"
    for name in _components():
        document = yaml.safe_load((K8S / "components" / name / "kustomization.yaml").read_text())
        assert document["kind"] == "Component", name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_objects_match_the_kubernetes_schemas(rendered, scenario):
    for obj in rendered[scenario]:
        _validate_schema(json.dumps(obj, sort_keys=True))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_container_is_hardened_probed_and_sized(rendered, scenario):
    objects = rendered[scenario]
    for workload in _workloads(objects):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        assert pod.get("automountServiceAccountToken") is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == UID, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        account = pod.get("serviceAccountName")
        assert account and _named(objects, "ServiceAccount", account)["automountServiceAccountToken"] is False
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == UID, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert context["seccompProfile"]["type"] == "RuntimeDefault", where
            mounts = container["volumeMounts"]
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in mounts), where
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), f"{where}: {bound}"
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert probe in container, f"{where}: no {probe}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mesh_probes_ask_the_grpc_health_service(rendered, scenario):
    for workload in filter(_is_mesh, _workloads(rendered[scenario])):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
            env = _environment(container, rendered[scenario])
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = container[kind]
                if "TLS_CLIENT_CA_FILE" in env:
                    # mTLS: the kubelet cannot present a client certificate; the exec probe can.
                    assert probe["exec"]["command"] == ["python", MTLS_PROBE], kind
                    assert env["TLS_CLIENT_CA_FILE"].startswith(tuple(_secret_mounts(workload, container)))
                elif kind == "livenessProbe" and workload["metadata"]["name"] == "gateway":
                    # The gateway's REST front shares its event loop: its ping proves both alive.
                    assert probe["httpGet"] == {"path": "/api/ping", "port": "rest"}
                else:
                    assert probe["grpc"] == {"port": grpc_port}, f"{workload['metadata']['name']}: {kind}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gateway_exposes_the_rest_front(rendered, scenario):
    """REST_PORT is the container's rest port, the Service's, and the caller NetworkPolicy's."""
    objects = rendered[scenario]
    (gateway,) = [w for w in _workloads(objects) if w["metadata"]["name"] == "gateway"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    rest = next(p["containerPort"] for p in container["ports"] if p["name"] == "rest")
    assert _environment(container, objects)["REST_PORT"] == str(rest)
    (service,) = [s for s in _of_kind(objects, "Service") if s["metadata"]["name"] == "gateway"]
    assert {"name": "rest", "port": rest, "targetPort": "rest"} in service["spec"]["ports"]
    for policy in _of_kind(objects, "NetworkPolicy"):
        if policy["metadata"]["name"] == "gateway-ingress":
            assert {"protocol": "TCP", "port": "rest"} in policy["spec"]["ingress"][0]["ports"]


_BINARY_UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_journal_s_write_ahead_file_outlives_a_container_restart_within_its_volume(rendered, scenario):
    """JOURNAL_WAL_DIR is an emptyDir (kept while the pod lives) larger than the file's bound."""
    objects = rendered[scenario]
    gateway = _named(objects, "Deployment", "gateway")
    pod = gateway["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _environment(container, objects)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == env["JOURNAL_WAL_DIR"]]
    assert not mount.get("readOnly")
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    limit = volume["emptyDir"]["sizeLimit"]
    size = int(limit[:-2]) * _BINARY_UNITS[limit[-2:]]
    assert int(env["JOURNAL_WAL_MAX_BYTES"]) < size, (
        "the file's bound refuses calls before the volume evicts the pod"
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_grace_period_outlasts_the_drain(rendered, scenario):
    objects = rendered[scenario]
    for workload in filter(_is_mesh, _workloads(objects)):
        pod = workload["spec"]["template"]["spec"]
        for container in pod["containers"]:
            env = _environment(container, objects)
            assert "SHUTDOWN_GRACE_SECONDS" in env, "set explicitly, so the grace period can be checked"
            notice = env.get(
                "SHUTDOWN_NOTICE_SECONDS", ServerSettings.model_fields["shutdown_notice_seconds"].default
            )
            drain = float(env["SHUTDOWN_GRACE_SECONDS"]) + float(notice) + _pre_stop_seconds(container)
            assert pod["terminationGracePeriodSeconds"] > drain, workload["metadata"]["name"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_deployment_has_a_disruption_budget_and_spreads(rendered, scenario):
    objects = rendered[scenario]
    budgets = _of_kind(objects, "PodDisruptionBudget")
    for deployment in _of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(_selects(b["spec"]["selector"]["matchLabels"], labels) for b in budgets), name
        spread = deployment["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        assert spread, f"{name}: no topologySpreadConstraints"
        assert all(_selects(c["labelSelector"]["matchLabels"], labels) for c in spread), name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_gateway_scales_on_cpu_and_knows_its_replica_count(rendered, scenario):
    objects = rendered[scenario]
    gateway = _named(objects, "Deployment", "gateway")
    assert "replicas" not in gateway["spec"], "the HPA owns the gateway's replica count"
    autoscaler = _named(objects, "HorizontalPodAutoscaler", "gateway")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    metrics = autoscaler["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    env = _environment(gateway["spec"]["template"]["spec"]["containers"][0], objects)
    assert int(env["GATEWAY_REPLICAS"]) == autoscaler["spec"]["minReplicas"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secrets_stay_out_of_the_manifests(rendered, scenario):
    objects = rendered[scenario]
    assert not _of_kind(objects, "Secret"), "the operator creates Secrets; the repo never renders one"
    for config in _of_kind(objects, "ConfigMap"):
        for key, value in config.get("data", {}).items():
            assert not SECRET_NAME.search(key), f"{config['metadata']['name']}: {key} belongs in a Secret"
            assert "PRIVATE KEY" not in value
            if key.endswith("_URL"):
                assert "@" not in value, f"{key}: credentials in a URL belong in a Secret"
    for workload in _workloads(objects):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                if SECRET_NAME.search(variable["name"]):
                    assert "secretKeyRef" in variable.get("valueFrom", {}), variable["name"]
            if _is_mesh(workload):
                # Keys and certificates: files under a Secret volume, never from the image.
                env = _environment(container, objects)
                mounts = tuple(_secret_mounts(workload, container))
                for name, path in env.items():
                    is_tls_file = name.startswith(
                        ("TLS_", "PROVIDER_TLS_", "UPSTREAM_CLIENT_")
                    ) and name.endswith("_FILE")
                    if name in ("KEYS_DIR", "JOURNAL_SIGNING_KEY_FILE") or is_tls_file:
                        assert mounts and path.startswith(mounts), f"{name}={path} is not on a Secret volume"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_services_name_their_ports_and_select_pods(rendered, scenario):
    objects = rendered[scenario]
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in _workloads(objects)]
    for service in _of_kind(objects, "Service"):
        name = service["metadata"]["name"]
        assert any(_selects(service["spec"]["selector"], labels) for labels in pod_labels), name
        if service["metadata"]["labels"].get("app.kubernetes.io/component") in MESH_COMPONENTS:
            assert {"grpc", "metrics"} <= {p["name"] for p in service["spec"]["ports"]}, name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_images_are_pinned(rendered, scenario):
    for workload in _workloads(rendered[scenario]):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            if "@sha256:" in image:
                continue
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", f"{image} is not pinned to a version or a digest"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_mtls_certificates_are_mounted(rendered, scenario):
    objects = rendered[scenario]
    mounted = {
        v["secret"]["secretName"]
        for w in _workloads(objects)
        for v in w["spec"]["template"]["spec"].get("volumes", [])
        if "secret" in v
    }
    for certificate in _of_kind(objects, "Certificate"):
        assert certificate["spec"]["secretName"] in mounted, certificate["metadata"]["name"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_network_policies_deny_by_default_and_allow_dns(rendered, scenario):
    names = {p["metadata"]["name"] for p in _of_kind(rendered[scenario], "NetworkPolicy")}
    if names:
        assert {"deny-all", "allow-dns", "gateway-ingress", "providers-ingress"} <= names


def test_prod_reads_redis_and_upstream_credentials_from_secrets(rendered):
    objects = rendered["overlay:prod"]
    gateway = _named(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"][0]
    redis_url = next(v for v in gateway["env"] if v["name"] == "REDIS_URL")
    assert redis_url["valueFrom"]["secretKeyRef"] == {"name": "redis", "key": "url"}
    for provider in (w for w in _of_kind(objects, "Deployment") if _component(w) == "provider"):
        container = provider["spec"]["template"]["spec"]["containers"][0]
        assert _environment(container, objects)["BACKEND"] == "upstream"
        secrets = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert secrets == [f"{provider['metadata']['name']}-upstream"]
        assert provider["spec"]["replicas"] >= 2


def test_dev_runs_one_replica_on_the_sandbox_with_redis(rendered):
    objects = rendered["overlay:dev"]
    for deployment in _of_kind(objects, "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert deployment["spec"].get("replicas", 1) == 1
        if _component(deployment) == "provider":
            assert _environment(container, objects)["BACKEND"] == "sandbox"
    assert _named(objects, "HorizontalPodAutoscaler", "gateway")["spec"]["maxReplicas"] == 1
    assert _named(objects, "StatefulSet", "redis")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_console_holds_no_key_nor_password_of_another_service(rendered, scenario):
    """Its only Secrets are its own session key and the admin API's operators file (digests alone)."""
    objects = rendered[scenario]
    pod = _named(objects, "Deployment", "console")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    references = {
        v["valueFrom"]["secretKeyRef"]["name"] for v in container.get("env", []) if "valueFrom" in v
    }
    references |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
    assert references == {"console"}
    assert {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v} == {"admin-operators"}
    env = _environment(container, objects)
    others = (
        "KEYS_DIR",
        "JOURNAL_DATABASE_URL",
        "JOURNAL_HMAC_KEY",
        "REDIS_URL",
        "REGISTRY_DATABASE_URL",
        "TOKEN_SIGNING_KID",
    )
    assert not set(others) & set(env), scenario


def test_production_gives_the_console_its_france_connect_and_proconnect_clients(rendered):
    """Settings in console-settings, client secrets from the console's own Secret, HTTPS egress out."""
    objects = rendered["overlay:prod"]
    (container,) = _named(objects, "Deployment", "console")["spec"]["template"]["spec"]["containers"]
    env = _environment(container, objects)
    for name in (
        "FRANCE_CONNECT_URL",
        "FRANCE_CONNECT_CLIENT_ID",
        "PROCONNECT_ISSUER",
        "PROCONNECT_CLIENT_ID",
    ):
        assert env[name], name
    assert env["FRANCE_CONNECT_URL"].startswith("https://")
    assert env["FRANCE_CONNECT_REDIRECT_URI"].endswith("/mes-donnees/retour")
    assert env["PROCONNECT_REDIRECT_URL"].endswith("/agent/proconnect/retour")
    secrets = {
        v["name"]: (v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
        for v in container["env"]
        if "valueFrom" in v
    }
    assert secrets["FRANCE_CONNECT_CLIENT_SECRET"] == ("console", "france-connect-client-secret")
    assert secrets["PROCONNECT_CLIENT_SECRET"] == ("console", "proconnect-client-secret")
    (egress,) = [
        p
        for p in _of_kind(objects, "NetworkPolicy")
        if p["metadata"]["name"] == "console-egress-identity-providers"
    ]
    (rule,) = egress["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 443}]
    assert all("10.0.0.0/8" in peer["ipBlock"].get("except", []) for peer in rule["to"][:1])
    dev = rendered["overlay:dev"]
    (in_dev,) = _named(dev, "Deployment", "console")["spec"]["template"]["spec"]["containers"]
    assert not _environment(in_dev, dev).get("FRANCE_CONNECT_URL")


def test_a_scenario_renders_the_console_s_egress_policy(rendered):
    assert any(
        p["metadata"]["name"] == "console-egress"
        for objects in rendered.values()
        for p in _of_kind(objects, "NetworkPolicy")
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_console_reaches_the_gateway_and_the_admin_api_only(rendered, scenario):
    """Maintenance windows go through the admin API: the console is let into no Redis."""
    objects = rendered[scenario]
    labels = _named(objects, "Deployment", "console")["spec"]["template"]["metadata"]["labels"]
    assert "api-particulier/redis-client" not in labels
    policies = [p for p in _of_kind(objects, "NetworkPolicy") if p["metadata"]["name"] == "console-egress"]
    for policy in policies:
        peers = {
            peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            for rule in policy["spec"]["egress"]
            for peer in rule["to"]
        }
        assert peers == {"gateway", "admin-api"}, scenario
