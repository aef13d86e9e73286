"""Kubernetes: each overlay under ``deploy/k8s/overlays/``, resolved as kustomize builds it.

Each container of a Deployment, StatefulSet, DaemonSet, Job, CronJob or Pod that runs the
service's image is a process (the image is the one the containers with a command of the
service run: arq, the migration; every container when none has such a command); its kind
comes from its ``command`` and ``args``, and without them it runs the image's, the API.
A variable counts as declared when ``env`` gives it a non-empty ``value``, a ``secretKeyRef``
or ``configMapKeyRef`` (to a Secret or ConfigMap the manifests generate, holding that key;
or to one you create in the namespace: never committed, so taken on trust), or a
``fieldRef``/``resourceFieldRef``; or when ``envFrom`` takes it from a ConfigMap or Secret the
manifests hold. An ``optional: true`` reference does not count: the pod starts without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omnistack_core.cli.platforms import kustomize
from omnistack_core.cli.platforms.processes import (
    PlatformFile,
    Process,
    Setting,
    command_kind,
    declared,
    gap,
    literal,
    text_of,
)
from omnistack_core.cli.platforms.yaml_files import relative, yaml_documents

OVERLAYS = Path("deploy/k8s/overlays")


def read(root: Path) -> list[PlatformFile]:
    """The processes of each overlay; none when the service has no ``deploy/k8s/overlays``.

    Raises:
        PlatformFileError: An overlay cannot be resolved.
    """
    directory = root / OVERLAYS
    if not directory.is_dir():
        return []
    found = []
    for overlay in sorted(path for path in directory.iterdir() if path.is_dir()):
        file = kustomize.kustomization_file(overlay)
        if file is None:
            continue
        documents = yaml_documents(file, root)
        if documents and isinstance(documents[0], dict) and documents[0].get("kind") == "Component":
            continue  # a part an overlay may switch on, not an overlay
        objects = kustomize.build(overlay, root)
        found.append(
            PlatformFile("kubernetes", relative(overlay, root), tuple(processes_of(objects)))
        )
    return found


def processes_of(objects: list[dict[str, Any]]) -> Iterator[Process]:
    """The service's processes among ``objects`` (built manifests)."""
    config_maps: dict[str, dict[str, str | None]] = {
        _name(obj): {str(k): text_of(v) for k, v in (obj.get("data") or {}).items()}
        for obj in objects
        if obj.get("kind") == "ConfigMap"
    }
    secrets = {
        _name(obj): kustomize.secret_data(obj) for obj in objects if obj.get("kind") == "Secret"
    }
    containers = list(_containers(objects))
    images = {
        container.get("image")
        for _, container, _ in containers
        if command_kind(_command(container)) is not None
    }
    for workload, container, count in containers:
        if images and container.get("image") not in images:
            continue  # a sidecar: another image
        name = f"{workload.get('kind')} {_name(workload)}"
        if count > 1:
            name += f", container {container.get('name')}"
        kind = command_kind(_command(container)) or "api"
        yield Process(name, kind, _Environment(config_maps, secrets).of(container))


def _containers(
    objects: list[dict[str, Any]],
) -> Iterator[tuple[dict[str, Any], dict[str, Any], int]]:
    """``(workload, container, containers in its pod)`` of every workload."""
    for obj in objects:
        spec = obj.get("spec") or {}
        kind = obj.get("kind")
        if kind == "Pod":
            pod = spec
        elif kind == "CronJob":
            pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get(
                "spec"
            ) or {}
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            pod = (spec.get("template") or {}).get("spec") or {}
        else:
            continue
        every = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
        for container in every:
            yield obj, container, len(every)


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _command(container: dict[str, Any]) -> list[str] | None:
    command = [*(container.get("command") or []), *(container.get("args") or [])]
    return [str(part) for part in command] or None


class _Environment:
    """How a container gets its variables from ``env`` and ``envFrom``."""

    def __init__(
        self,
        config_maps: dict[str, dict[str, str | None]],
        secrets: dict[str, dict[str, str | None]],
    ) -> None:
        self._sources: dict[str, dict[str, dict[str, str | None]]] = {
            "ConfigMap": config_maps,
            "Secret": secrets,
        }

    def of(self, container: dict[str, Any]) -> dict[str, Setting]:
        """The container's variables: ``envFrom`` in order, then ``env`` over them."""
        settings: dict[str, Setting] = {}
        for source in container.get("envFrom") or []:
            prefix = str(source.get("prefix") or "")
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source:
                    name = str((source[key] or {}).get("name"))
                    for variable, value in self._sources[kind].get(name, {}).items():
                        settings[prefix + variable] = self._held(kind, name, value)
        for entry in container.get("env") or []:
            settings[str(entry.get("name"))] = self._entry(entry)
        return settings

    def _entry(self, entry: dict[str, Any]) -> Setting:
        if "valueFrom" not in entry:
            return literal(text_of(entry.get("value")), "env value")
        reference = entry["valueFrom"] or {}
        for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
            if key in reference:
                return self._reference(kind, reference[key] or {})
        return declared(f"valueFrom {', '.join(reference)}")

    def _reference(self, kind: str, reference: dict[str, Any]) -> Setting:
        name, key = str(reference.get("name")), str(reference.get("key"))
        source = f"{kind} {name}, key {key}"
        if reference.get("optional") is True:
            return gap(source, f"taken from an optional reference to {source} (optional: true)")
        held = self._sources[kind].get(name)
        if held is None:
            return declared(f"{source} (created in the namespace, outside the manifests)")
        if key not in held:
            return gap(source, f"taken from {kind} {name}, which has no key {key}")
        return self._held(kind, name, held[key])

    @staticmethod
    def _held(kind: str, name: str, value: str | None) -> Setting:
        if value is None:
            return declared(f"{kind} {name}")
        return literal(value, f"{kind} {name}")
