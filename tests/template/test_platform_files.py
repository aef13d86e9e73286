"""The files platforms read (fly.toml, render.yaml, .railway/railway.py, deploy/k8s), as generated.

Each answer set is rendered from a snapshot of this working tree; the Railway file is evaluated
with railway-sdk the way the Railway CLI evaluates it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import railway_sdk
import yaml

from omnistack_core.ai import AISettings
from omnistack_core.billing import BillingSettings
from omnistack_core.settings import Settings
from tests.template.rendering import ANSWER_SETS, REPOSITORY, renderer

# Beyond the shared sets: Railway and Render with Clerk, and with no authentication at all.
ANSWERS: dict[str, dict[str, Any]] = {
    **ANSWER_SETS,
    "clerk-railway-render": {
        "project_name": "Clerk Platforms",
        "auth_provider": "clerk",
        "modules": [],
        "deploy_targets": ["railway", "render", "kubernetes"],
    },
    "no-auth-platforms": {
        "project_name": "Open Platforms",
        "auth_provider": "none",
        "modules": [],
        "deploy_targets": ["railway", "render", "fly"],
        "monitoring": False,
    },
}

PLATFORM_FILES = {
    "railway": [".railway/railway.py", ".railway/requirements.txt", "docs/deploy-railway.md"],
    "render": ["render.yaml"],
    "fly": ["fly.toml"],
    # The files of every Kubernetes service; the worker's come with the jobs module
    # (tests/template/test_kubernetes.py).
    "kubernetes": [
        f"deploy/k8s/{file}"
        for file in [
            "base/kustomization.yaml",
            "base/app-env.yaml",
            "base/serviceaccount.yaml",
            "base/networkpolicy.yaml",
            "base/migrate-job.yaml",
            "base/api-deployment.yaml",
            "base/api-service.yaml",
            "base/api-ingress.yaml",
            "base/api-hpa.yaml",
            "base/api-pdb.yaml",
            "components/prometheus-operator/kustomization.yaml",
            "components/prometheus-operator/api-servicemonitor.yaml",
            "overlays/staging/kustomization.yaml",
            "overlays/staging/namespace.yaml",
            "overlays/production/kustomization.yaml",
            "overlays/production/namespace.yaml",
        ]
    ],
}

AUTH_VARIABLES = {
    "supabase": {"SUPABASE_PROJECT_URL"},
    "clerk": {"CLERK_ISSUER_URL"},
    "none": set(),
}

# What billing needs outside development besides its secrets' neighbours: asked for on Render,
# preserved on Railway, required by compose, never written into fly.toml.
BILLING_SECRETS = {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"}
BILLING_REQUIRED = BILLING_SECRETS | {"BILLING_PLANS", "BILLING_SUCCESS_URL"}

# AI's keys are secrets, and optional: no model, no key needed (the chat answers 503). Render
# asks for them and the models, Railway preserves those and the budgets, compose passes them
# through when set, fly.toml shows where the non-secret ones go.
AI_SECRETS = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
AI_ASKED = AI_SECRETS | {"AI_DEFAULT_MODEL", "AI_FALLBACK_MODELS"}
AI_PRESERVED = AI_ASKED | {"AI_QUOTA_TOKENS", "AI_QUOTA_REQUESTS", "AI_RECORD_USAGE"}

MIGRATE = "python scripts/migrate_production.py"
SERVE = "omnistack serve"
# What every platform file behind a proxy on a private network trusts X-Forwarded-For from.
PROXY_NETWORKS = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10,fc00::/7"
LIVENESS = "/api/v1/public/health"
READINESS = "/api/v1/public/health/ready"


def sets_with(target: str) -> list[str]:
    return [name for name, answers in ANSWERS.items() if target in answers["deploy_targets"]]


def billing_chosen(name: str) -> bool:
    return "billing" in ANSWERS[name]["modules"]


def ai_chosen(name: str) -> bool:
    return "ai" in ANSWERS[name]["modules"]


def email_chosen(name: str) -> bool:
    return "email" in ANSWERS[name]["modules"]


@pytest.fixture(scope="module")
def generate(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Render an answer set on first use; later tests of the module reuse the project."""
    return renderer(tmp_path_factory, ANSWERS)


def slug(project: Path) -> str:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return str(answers["project_slug"])


def fly_toml(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "fly.toml").read_text())


def render_yaml(project: Path) -> dict[str, Any]:
    blueprint: dict[str, Any] = yaml.safe_load((project / "render.yaml").read_text())
    return blueprint


def render_web(blueprint: dict[str, Any]) -> dict[str, Any]:
    web: dict[str, Any]
    (web,) = [s for s in blueprint["services"] if s["type"] == "web"]
    return web


def env_vars(web: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["key"]: entry for entry in web["envVars"]}


def railway_graph(project: Path, environment: str = "production") -> dict[str, Any]:
    """What the Railway CLI gets from .railway/railway.py: ``main(ctx).to_graph()`` as JSON."""
    spec = importlib.util.spec_from_file_location(
        f"railway_config_{environment}", project / ".railway/railway.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    context = railway_sdk.create_railway_context({"environment": environment})
    graph: dict[str, Any] = json.loads(json.dumps(module.main(context).to_graph()))
    return graph


def railway_resources(graph: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {resource["address"]: resource for resource in graph["resources"]}


def railway_web(project: Path, environment: str = "production") -> dict[str, Any]:
    web: dict[str, Any]
    (web,) = [
        resource
        for resource in railway_graph(project, environment)["resources"]
        if resource["type"] == "service" and resource["name"] == slug(project)
    ]
    return web


# --- all targets --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ANSWERS))
def test_the_image_starts_with_omnistack_serve_and_no_file_trusts_every_proxy(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    dockerfile = (project / "docker/Dockerfile").read_text()
    [command] = [line for line in dockerfile.splitlines() if line.startswith("CMD ")]
    assert json.loads(command.removeprefix("CMD ")) == SERVE.split()
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            text = path.read_text(errors="replace")
            # Trusting every peer's X-Forwarded-For lets any caller pick its own address.
            assert "forwarded-allow-ips" not in text, path
            assert "exec uvicorn" not in text, path


@pytest.mark.parametrize("name", sets_with("fly"))
def test_fly_believes_only_its_proxys_client_header(
    generate: Callable[[str], Path], name: str
) -> None:
    env = fly_toml(generate(name))["env"]
    assert env["FORWARDED_ALLOW_IPS"] == PROXY_NETWORKS
    assert env["FORWARDED_CLIENT_IP_HEADER"] == "Fly-Client-IP"
    settings = Settings(forwarded_allow_ips=env["FORWARDED_ALLOW_IPS"])
    assert settings.forwarded_client_ip_header == ""  # the default, which fly.toml overrides


@pytest.mark.parametrize("name", sets_with("render"))
def test_render_believes_x_forwarded_for_only_from_its_private_network(
    generate: Callable[[str], Path], name: str
) -> None:
    web = render_web(render_yaml(generate(name)))
    assert "dockerCommand" not in web  # the image's CMD: omnistack serve
    assert env_vars(web)["FORWARDED_ALLOW_IPS"]["value"] == PROXY_NETWORKS


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_believes_x_forwarded_for_only_from_its_private_network(
    generate: Callable[[str], Path], name: str
) -> None:
    variables = railway_web(generate(name))["variables"]
    assert variables["FORWARDED_ALLOW_IPS"]["value"] == PROXY_NETWORKS


@pytest.mark.parametrize("name", sets_with("docker"))
def test_compose_publishes_the_api_on_loopback_and_trusts_no_proxy(
    generate: Callable[[str], Path], name: str
) -> None:
    api = yaml.safe_load((generate(name) / "docker-compose.yml").read_text())["services"]["api"]
    assert api["ports"] == ["127.0.0.1:8000:8000"]
    assert "command" not in api  # the image's CMD: omnistack serve
    assert "FORWARDED_ALLOW_IPS" not in api["environment"]


@pytest.mark.parametrize("name", ANSWERS)
def test_every_platform_file_sets_one_web_worker_per_instance(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    targets = ANSWERS[name]["deploy_targets"]
    counts: dict[str, str] = {}
    if "fly" in targets:
        counts["fly"] = fly_toml(project)["env"]["WEB_CONCURRENCY"]
    if "render" in targets:
        web = render_web(render_yaml(project))
        counts["render"] = env_vars(web)["WEB_CONCURRENCY"]["value"]
    if "railway" in targets:
        for environment in ("production", "pr-12"):
            variables = railway_web(project, environment)["variables"]
            counts[f"railway {environment}"] = variables["WEB_CONCURRENCY"]["value"]
    if "docker" in targets:
        compose = yaml.safe_load((project / "docker-compose.yml").read_text())
        counts["compose"] = compose["services"]["api"]["environment"]["WEB_CONCURRENCY"]
    # The smallest plans have room for one copy of the app; instances scale beyond it.
    assert counts == dict.fromkeys(counts, "1")
    assert len(counts) >= len(set(targets) - {"kubernetes"})
    for count in counts.values():
        assert Settings(web_concurrency=count).web_concurrency == 1


@pytest.mark.parametrize("name", ANSWERS)
def test_platform_files_exist_exactly_for_the_chosen_targets(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    for target, files in PLATFORM_FILES.items():
        chosen = target in ANSWERS[name]["deploy_targets"]
        for file in files:
            assert (project / file).is_file() is chosen, (target, file)
    # No empty directory is left behind for an unchosen Railway either.
    railway = "railway" in ANSWERS[name]["deploy_targets"]
    assert (project / ".railway").exists() is railway
    assert (project / "docs").exists() is railway
    assert (project / "deploy").exists() is ("kubernetes" in ANSWERS[name]["deploy_targets"])


@pytest.mark.parametrize("name", ANSWERS)
def test_platform_files_carry_no_template_markup(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    for files in PLATFORM_FILES.values():
        for file in files:
            path = project / file
            if path.is_file():
                text = path.read_text()
                assert not re.search(r"\{%|%\}|\{#|#\}", text), file
                # Railway's own references (${{Postgres.DATABASE_URL}}) are meant to stay.
                assert not re.search(r"(?<!\$)\{\{", text), file


# --- Fly.io -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sets_with("fly"))
def test_fly_toml_names_the_app_region_build_and_http_service(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    fly = fly_toml(project)
    assert fly["app"] == slug(project)
    assert re.fullmatch(r"[a-z]{3}", fly["primary_region"])
    assert fly["build"]["dockerfile"] == "docker/Dockerfile"
    http = fly["http_service"]
    assert http["internal_port"] == 8080
    assert fly["env"]["PORT"] == "8080"
    assert http["force_https"] is True
    assert http["auto_stop_machines"] == "stop"
    assert http["auto_start_machines"] is True
    assert http["min_machines_running"] >= 0
    assert http["concurrency"]["soft_limit"] <= http["concurrency"]["hard_limit"]
    assert fly["vm"][0]["size"]


@pytest.mark.parametrize("name", sets_with("fly"))
def test_fly_migrates_in_the_release_command_and_rolls_machines(
    generate: Callable[[str], Path], name: str
) -> None:
    deploy = fly_toml(generate(name))["deploy"]
    assert deploy["release_command"] == MIGRATE
    assert deploy["strategy"] == "rolling"


@pytest.mark.parametrize("name", sets_with("fly"))
def test_fly_kill_timeout_outlasts_the_graceful_shutdown(
    generate: Callable[[str], Path], name: str
) -> None:
    fly = fly_toml(generate(name))
    assert fly["kill_signal"] in {"SIGTERM", "SIGINT"}
    assert fly["kill_timeout"] > int(fly["env"]["SHUTDOWN_GRACE_SECONDS"]) > 0


@pytest.mark.parametrize("name", sets_with("fly"))
def test_fly_routes_on_readiness_and_checks_liveness(
    generate: Callable[[str], Path], name: str
) -> None:
    fly = fly_toml(generate(name))
    (readiness,) = fly["http_service"]["checks"]
    assert readiness["path"] == READINESS
    assert {"grace_period", "interval", "timeout"} <= readiness.keys()
    liveness = [check for check in fly["checks"].values() if check["path"] == LIVENESS]
    assert liveness
    assert liveness[0]["port"] == fly["http_service"]["internal_port"]


@pytest.mark.parametrize("name", sets_with("fly"))
def test_fly_env_holds_settings_but_no_secrets(generate: Callable[[str], Path], name: str) -> None:
    env = fly_toml(generate(name))["env"]
    assert env["ENVIRONMENT"] == "production"
    assert env["LOG_FORMAT"] == "json"
    assert (
        not {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SENTRY_DSN", *BILLING_SECRETS, *AI_SECRETS}
        & env.keys()
    )
    provider = ANSWERS[name]["auth_provider"]
    assert env.get("AUTH_PROVIDER") == (None if provider == "none" else provider)


# --- Render -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sets_with("render"))
def test_render_web_service_builds_the_image_and_migrates_before_deploy(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    web = render_web(render_yaml(project))
    assert web["name"] == slug(project)
    assert web["runtime"] == "docker"
    assert web["dockerfilePath"] == "./docker/Dockerfile"
    assert web["dockerContext"] == "."
    assert web["healthCheckPath"] == LIVENESS
    assert web["preDeployCommand"] == MIGRATE
    # Pre-deploy commands need a paid instance type.
    assert web["plan"] != "free"


@pytest.mark.parametrize("name", sets_with("render"))
def test_render_wires_the_database_and_key_value_connection_strings(
    generate: Callable[[str], Path], name: str
) -> None:
    blueprint = render_yaml(generate(name))
    variables = env_vars(render_web(blueprint))
    (database,) = blueprint["databases"]
    assert database["postgresMajorVersion"] == "16"
    assert variables["DATABASE_URL"]["fromDatabase"] == {
        "name": database["name"],
        "property": "connectionString",
    }
    (keyvalue,) = [s for s in blueprint["services"] if s["type"] == "keyvalue"]
    assert keyvalue["ipAllowList"] == []
    assert variables["REDIS_URL"]["fromService"] == {
        "type": "keyvalue",
        "name": keyvalue["name"],
        "property": "connectionString",
    }
    # Internal connection strings only reach resources in the same region.
    assert len({r.get("region") for r in [*blueprint["services"], database]}) == 1


@pytest.mark.parametrize("name", sets_with("render"))
def test_render_generates_the_secret_key_and_asks_for_the_auth_settings(
    generate: Callable[[str], Path], name: str
) -> None:
    variables = env_vars(render_web(render_yaml(generate(name))))
    assert variables["SECRET_KEY"] == {"key": "SECRET_KEY", "generateValue": True}
    assert variables["ENVIRONMENT"]["value"] == "production"
    provider = ANSWERS[name]["auth_provider"]
    asked = {key for key, entry in variables.items() if entry.get("sync") is False}
    billing = BILLING_REQUIRED if billing_chosen(name) else set()
    ai = AI_ASKED if ai_chosen(name) else set()
    email = EMAIL_SET_BY_HAND | {"RESEND_WEBHOOK_SECRET"} if email_chosen(name) else set()
    assert asked - {"SENTRY_DSN"} == AUTH_VARIABLES[provider] | billing | ai | email
    for key in asked:
        assert "value" not in variables[key]
    if provider == "none":
        assert "AUTH_PROVIDER" not in variables
    else:
        assert variables["AUTH_PROVIDER"]["value"] == provider


@pytest.mark.parametrize("name", sets_with("render"))
def test_render_graceful_shutdown_fits_the_shutdown_delay(
    generate: Callable[[str], Path], name: str
) -> None:
    web = render_web(render_yaml(generate(name)))
    grace = int(env_vars(web)["SHUTDOWN_GRACE_SECONDS"]["value"])
    assert 0 < grace < web.get("maxShutdownDelaySeconds", 30)


# --- Railway ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_service_builds_from_the_dockerfile(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    web = railway_web(project)
    assert web["name"] == slug(project)
    assert web["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "docker/Dockerfile"}


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_service_starts_with_omnistack_serve(
    generate: Callable[[str], Path], name: str
) -> None:
    # Exec form, no shell: omnistack serve reads PORT and SHUTDOWN_GRACE_SECONDS itself.
    assert railway_web(generate(name))["deploy"]["startCommand"] == SERVE


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_health_check_and_restart_policy_follow_the_guide(
    generate: Callable[[str], Path], name: str
) -> None:
    deploy = railway_web(generate(name))["deploy"]
    assert deploy["healthcheckPath"] == LIVENESS
    assert deploy["healthcheckTimeout"] == 30
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert deploy["restartPolicyMaxRetries"] == 3


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_migrates_in_the_pre_deploy_command(
    generate: Callable[[str], Path], name: str
) -> None:
    assert railway_web(generate(name))["deploy"]["preDeployCommand"] == [MIGRATE]


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_declares_postgres_and_redis_and_references_their_urls(
    generate: Callable[[str], Path], name: str
) -> None:
    graph = railway_graph(generate(name))
    resources = railway_resources(graph)
    engines = {r["engine"]: r for r in resources.values() if r["type"] == "database"}
    assert engines.keys() == {"postgres", "redis"}
    variables = railway_web(generate(name))["variables"]
    assert variables["DATABASE_URL"] == {
        "type": "reference",
        "resource": engines["postgres"]["address"],
        "output": "DATABASE_URL",
    }
    assert variables["REDIS_URL"] == {
        "type": "reference",
        "resource": engines["redis"]["address"],
        "output": "REDIS_URL",
    }
    # One file owns the project: no partial, so nothing outside it is left unmanaged.
    assert graph["name"] == slug(generate(name))


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_secrets_are_kept_on_railway_never_written(
    generate: Callable[[str], Path], name: str
) -> None:
    variables = railway_web(generate(name))["variables"]
    for secret in ("SECRET_KEY", "SENTRY_DSN", "METRICS_TOKEN"):
        assert variables[secret] == {"type": "preserve"}
    literal = {key for key, value in variables.items() if value["type"] == "literal"}
    assert literal <= {
        "ENVIRONMENT",
        "SERVICE_NAME",
        "LOG_FORMAT",
        "SHUTDOWN_GRACE_SECONDS",
        "WEB_CONCURRENCY",
        "FORWARDED_ALLOW_IPS",
        "SENTRY_TRACES_SAMPLE_RATE",
        "AUTH_PROVIDER",
        "EMAIL_PROVIDER",
    }


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_auth_variables_follow_the_answer(
    generate: Callable[[str], Path], name: str
) -> None:
    variables = railway_web(generate(name))["variables"]
    provider = ANSWERS[name]["auth_provider"]
    for key in AUTH_VARIABLES[provider]:
        assert variables[key] == {"type": "preserve"}
    for other in set().union(*AUTH_VARIABLES.values()) - AUTH_VARIABLES[provider]:
        assert other not in variables
    if provider == "none":
        assert "AUTH_PROVIDER" not in variables
    else:
        assert variables["AUTH_PROVIDER"]["value"] == provider


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_draining_time_outlasts_the_graceful_shutdown(
    generate: Callable[[str], Path], name: str
) -> None:
    web = railway_web(generate(name))
    grace = int(web["variables"]["SHUTDOWN_GRACE_SECONDS"]["value"])
    assert web["deploy"]["drainingSeconds"] > grace > 0


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_other_environments_run_as_staging_on_one_replica(
    generate: Callable[[str], Path], name: str
) -> None:
    production = railway_web(generate(name), "production")
    staging = railway_web(generate(name), "pr-12")
    assert production["variables"]["ENVIRONMENT"]["value"] == "production"
    assert production["deploy"]["numReplicas"] >= 2
    assert staging["variables"]["ENVIRONMENT"]["value"] == "staging"
    assert staging["deploy"]["numReplicas"] == 1


@pytest.mark.parametrize("name", sets_with("railway"))
def test_railway_files_name_the_sdk_and_the_migration_command(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    assert "railway-sdk" in (project / ".railway/requirements.txt").read_text()
    guide = (project / "docs/deploy-railway.md").read_text()
    assert "railway config migrate --lang py" in guide
    assert "2026-12-01" in guide


# --- the jobs worker --------------------------------------------------------------------------

WORKER_COMMAND = "arq app.jobs.worker.WorkerSettings"


def sets_with_jobs(target: str) -> list[str]:
    return [name for name in sets_with(target) if "jobs" in ANSWERS[name]["modules"]]


@pytest.mark.parametrize("name", sets_with_jobs("docker"))
def test_compose_runs_the_worker_with_its_health_command(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    services = yaml.safe_load((project / "docker-compose.yml").read_text())["services"]
    worker = services["worker"]
    assert " ".join(worker["command"]) == WORKER_COMMAND
    assert worker["healthcheck"]["test"] == ["CMD", "omnistack", "worker-check"]
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", sets_with_jobs("render"))
def test_render_runs_the_worker_sharing_the_web_secret_key(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    [worker] = [s for s in render_yaml(project)["services"] if s["type"] == "worker"]
    variables = {variable["key"]: variable for variable in worker["envVars"]}
    assert worker["dockerCommand"] == WORKER_COMMAND
    assert variables["SECRET_KEY"]["fromService"]["envVarKey"] == "SECRET_KEY"
    assert variables["REDIS_URL"]["fromService"]["type"] == "keyvalue"


@pytest.mark.parametrize("name", sets_with_jobs("fly"))
def test_fly_runs_the_worker_as_a_process_group_with_a_check(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    config = tomllib.loads((project / "fly.toml").read_text())
    assert config["processes"]["worker"] == WORKER_COMMAND
    assert config["processes"]["app"] == SERVE
    assert config["http_service"]["processes"] == ["app"]
    assert config["checks"]["worker_alive"]["processes"] == ["worker"]
    assert config["checks"]["worker_alive"]["port"] == int(config["env"]["WORKER_METRICS_PORT"])


@pytest.mark.parametrize("name", sets_with_jobs("railway"))
def test_railway_runs_the_worker_with_the_apis_secret_key(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    [worker] = [
        resource
        for resource in railway_graph(project)["resources"]
        if resource["type"] == "service" and resource["name"] == f"{slug(project)}-worker"
    ]
    assert WORKER_COMMAND in json.dumps(worker)
    assert "ON_FAILURE" in json.dumps(worker)
    secret = json.dumps(worker).split('"SECRET_KEY": ', 1)[1]
    assert secret.startswith('{"type": "reference"')


# --- billing ----------------------------------------------------------------------------------


def sets_with_billing(target: str) -> list[str]:
    return [name for name in sets_with(target) if billing_chosen(name)]


def env_example(project: Path) -> dict[str, str]:
    """The variables .env.example sets or shows commented out, with their example values."""
    found = re.findall(
        r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", (project / ".env.example").read_text(), re.M
    )
    return dict(found)


@pytest.mark.parametrize("name", [name for name in ANSWERS if billing_chosen(name)])
def test_env_example_documents_every_billing_variable_with_no_secret(
    generate: Callable[[str], Path], name: str
) -> None:
    variables = env_example(generate(name))
    billing = {
        field.upper() for field in BillingSettings.model_fields.keys() - Settings.model_fields
    }
    assert billing | BILLING_SECRETS <= variables.keys()
    for secret in BILLING_SECRETS:
        assert variables[secret] == ""


@pytest.mark.parametrize("name", [name for name in ANSWERS if not billing_chosen(name)])
def test_without_billing_no_stripe_variable_is_mentioned(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    for file in [".env.example", *[f for files in PLATFORM_FILES.values() for f in files]]:
        if (project / file).is_file():
            assert "STRIPE_" not in (project / file).read_text(), file


@pytest.mark.parametrize("name", sets_with_billing("render"))
def test_render_asks_for_billing_settings_and_shares_them_with_the_worker(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    blueprint = render_yaml(project)
    web = env_vars(render_web(blueprint))
    for key in BILLING_REQUIRED:
        assert web[key] == {"key": key, "sync": False}
    for worker in [s for s in blueprint["services"] if s["type"] == "worker"]:
        variables = env_vars(worker)
        for key in BILLING_REQUIRED:
            assert variables[key]["fromService"] == {
                "type": "web",
                "name": slug(project),
                "envVarKey": key,
            }


@pytest.mark.parametrize("name", sets_with_billing("fly"))
def test_fly_leaves_the_stripe_keys_to_fly_secrets(
    generate: Callable[[str], Path], name: str
) -> None:
    text = (generate(name) / "fly.toml").read_text()
    assert re.search(
        r"^#\s+fly secrets set STRIPE_SECRET_KEY=\S+ STRIPE_WEBHOOK_SECRET=", text, re.M
    )
    # Not secret, but required and only you know them: set the same way before the first
    # deploy, so no machine starts without them.
    assert re.search(
        r"^#\s+fly secrets set BILLING_PLANS='\{.*\}' BILLING_SUCCESS_URL=", text, re.M
    )
    assert "BILLING_PLANS" not in fly_toml(generate(name))["env"]


@pytest.mark.parametrize("name", sets_with_billing("railway"))
def test_railway_preserves_billing_settings_and_hands_them_to_the_worker(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    resources = railway_graph(project)["resources"]
    web = railway_web(project)
    for key in BILLING_REQUIRED:
        assert web["variables"][key] == {"type": "preserve"}
    for worker in [r for r in resources if r["name"] == f"{slug(project)}-worker"]:
        for key in BILLING_REQUIRED:
            assert worker["variables"][key]["type"] == "reference", key
    guide = (project / "docs/deploy-railway.md").read_text()
    assert "railway variable set STRIPE_SECRET_KEY=" in guide


@pytest.mark.parametrize("name", sets_with_billing("docker"))
def test_compose_requires_the_billing_settings_from_env(
    generate: Callable[[str], Path], name: str
) -> None:
    compose = yaml.safe_load((generate(name) / "docker-compose.yml").read_text())
    environment = compose["services"]["api"]["environment"]
    for key in BILLING_REQUIRED:
        assert environment[key] == f"${{{key}:?set {key} in .env}}"


# --- email ------------------------------------------------------------------------------------

# What email needs outside development: a provider (resend), a sender, and Resend's key.
EMAIL_SET_BY_HAND = {"EMAIL_FROM", "RESEND_API_KEY"}


def sets_with_email(target: str) -> list[str]:
    return [name for name in sets_with(target) if email_chosen(name)]


@pytest.mark.parametrize("name", sets_with_email("render"))
def test_render_asks_for_the_email_settings_and_shares_them_with_the_worker(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    blueprint = render_yaml(project)
    web = env_vars(render_web(blueprint))
    assert web["EMAIL_PROVIDER"] == {"key": "EMAIL_PROVIDER", "value": "resend"}
    for key in EMAIL_SET_BY_HAND:
        assert web[key] == {"key": key, "sync": False}
    for worker in [s for s in blueprint["services"] if s["type"] == "worker"]:
        variables = env_vars(worker)
        assert variables["EMAIL_PROVIDER"]["value"] == "resend"
        for key in EMAIL_SET_BY_HAND:
            assert variables[key]["fromService"]["envVarKey"] == key


@pytest.mark.parametrize("name", sets_with_email("railway"))
def test_railway_preserves_the_email_settings_and_hands_them_to_the_worker(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    web = railway_web(project)
    assert web["variables"]["EMAIL_PROVIDER"] == {"type": "literal", "value": "resend"}
    for key in EMAIL_SET_BY_HAND:
        assert web["variables"][key] == {"type": "preserve"}
    for worker in [r for r in railway_graph(project)["resources"] if r["name"].endswith("-worker")]:
        for key in EMAIL_SET_BY_HAND:
            assert worker["variables"][key]["type"] == "reference", key


@pytest.mark.parametrize("name", sets_with_email("fly"))
def test_fly_names_the_email_provider_and_leaves_the_key_to_fly_secrets(
    generate: Callable[[str], Path], name: str
) -> None:
    text = (generate(name) / "fly.toml").read_text()
    assert fly_toml(generate(name))["env"]["EMAIL_PROVIDER"] == "resend"
    assert re.search(r"^#\s+fly secrets set RESEND_API_KEY=", text, re.M)
    assert re.search(r"^#\s+fly secrets set EMAIL_FROM=\"", text, re.M)


@pytest.mark.parametrize("name", sets_with_email("docker"))
def test_compose_requires_a_sender_and_passes_the_provider_settings(
    generate: Callable[[str], Path], name: str
) -> None:
    compose = yaml.safe_load((generate(name) / "docker-compose.yml").read_text())
    for service in ("api", *(["worker"] if "worker" in compose["services"] else [])):
        environment = compose["services"][service]["environment"]
        assert environment["EMAIL_PROVIDER"] == "${EMAIL_PROVIDER:-resend}"
        assert environment["EMAIL_FROM"] == "${EMAIL_FROM:?set EMAIL_FROM in .env}"
        assert environment["RESEND_API_KEY"] == "${RESEND_API_KEY:?set RESEND_API_KEY in .env}"


# --- AI ---------------------------------------------------------------------------------------


def sets_with_ai(target: str) -> list[str]:
    return [name for name in sets_with(target) if ai_chosen(name)]


@pytest.mark.parametrize("name", [name for name in ANSWERS if ai_chosen(name)])
def test_env_example_documents_every_ai_variable_with_no_secret(
    generate: Callable[[str], Path], name: str
) -> None:
    variables = env_example(generate(name))
    ai = {field.upper() for field in AISettings.model_fields.keys() - Settings.model_fields}
    assert ai | AI_SECRETS <= variables.keys()
    for variable in AI_SECRETS | {"AI_DEFAULT_MODEL", "AI_FALLBACK_MODELS"}:
        # Empty: the service starts with AI off, and .env (made from this file) holds no key.
        assert variables[variable] == "", variable


@pytest.mark.parametrize("name", [name for name in ANSWERS if not ai_chosen(name)])
def test_without_ai_no_ai_variable_is_mentioned(generate: Callable[[str], Path], name: str) -> None:
    project = generate(name)
    for file in [".env.example", *[f for files in PLATFORM_FILES.values() for f in files]]:
        if (project / file).is_file():
            text = (project / file).read_text()
            assert not re.search(r"OPENAI_|ANTHROPIC_|AI_DEFAULT_MODEL", text), file


@pytest.mark.parametrize("name", sets_with_ai("render"))
def test_render_asks_for_the_ai_keys_and_models_and_shares_them_with_the_worker(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    blueprint = render_yaml(project)
    web = env_vars(render_web(blueprint))
    for key in AI_ASKED:
        assert web[key] == {"key": key, "sync": False}
    for worker in [s for s in blueprint["services"] if s["type"] == "worker"]:
        variables = env_vars(worker)
        for key in AI_ASKED:
            assert variables[key]["fromService"] == {
                "type": "web",
                "name": slug(project),
                "envVarKey": key,
            }


@pytest.mark.parametrize("name", sets_with_ai("fly"))
def test_fly_leaves_the_ai_keys_to_fly_secrets_and_shows_where_the_model_goes(
    generate: Callable[[str], Path], name: str
) -> None:
    text = (generate(name) / "fly.toml").read_text()
    assert re.search(r"^#\s+fly secrets set OPENAI_API_KEY=\S+ ANTHROPIC_API_KEY=", text, re.M)
    # Commented out: a model set before its key is a secret would stop the machines starting.
    assert re.search(r'^  # AI_DEFAULT_MODEL = "openai:', text, re.M)
    assert "AI_DEFAULT_MODEL" not in fly_toml(generate(name))["env"]


@pytest.mark.parametrize("name", sets_with_ai("railway"))
def test_railway_preserves_the_ai_settings_and_hands_them_to_the_worker(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    resources = railway_graph(project)["resources"]
    web = railway_web(project)
    for key in AI_PRESERVED:
        assert web["variables"][key] == {"type": "preserve"}
    for worker in [r for r in resources if r["name"] == f"{slug(project)}-worker"]:
        for key in AI_PRESERVED:
            assert worker["variables"][key]["type"] == "reference", key
    guide = (project / "docs/deploy-railway.md").read_text()
    assert "railway variable set OPENAI_API_KEY=" in guide


@pytest.mark.parametrize("name", sets_with_ai("docker"))
def test_compose_passes_the_ai_settings_through_without_requiring_them(
    generate: Callable[[str], Path], name: str
) -> None:
    compose = yaml.safe_load((generate(name) / "docker-compose.yml").read_text())
    environment = compose["services"]["api"]["environment"]
    for key in AI_PRESERVED:
        assert environment[key] == f"${{{key}:-}}"


# --- monitoring -------------------------------------------------------------------------------

# The library's monitoring/ is the source; the template holds the same files, byte for byte.
MONITORING = REPOSITORY / "monitoring"
JOBS_ALERTS = Path("prometheus/jobs-alerts.yml")


def monitoring_chosen(name: str) -> bool:
    return bool(ANSWERS[name].get("monitoring", True))


def files_under(directory: Path) -> dict[Path, bytes]:
    return {
        path.relative_to(directory): path.read_bytes()
        for path in directory.rglob("*")
        if path.is_file()
    }


@pytest.mark.parametrize("name", [name for name in ANSWERS if monitoring_chosen(name)])
def test_monitoring_is_the_repositorys_copy_with_job_alerts_only_with_jobs(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)
    expected = files_under(MONITORING)
    if "jobs" not in ANSWERS[name]["modules"]:
        del expected[JOBS_ALERTS]

    assert files_under(project / "monitoring") == expected
    assert "## Monitor it" in (project / "README.md").read_text()


@pytest.mark.parametrize("name", [name for name in ANSWERS if not monitoring_chosen(name)])
def test_without_monitoring_there_is_no_monitoring_directory(
    generate: Callable[[str], Path], name: str
) -> None:
    project = generate(name)

    assert not (project / "monitoring").exists()
    assert "## Monitor it" not in (project / "README.md").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["monitoring"] is False
