"""Render's Blueprint, ``render.yaml``: its services, their pre-deploy commands, and their env.

A web or private service runs the API, a background worker the jobs worker (each unless its
``dockerCommand``/``startCommand`` says otherwise), and a ``preDeployCommand`` is one more
process with its service's variables: the migration. A variable counts as declared when its
``envVars`` entry (or an ``envVarGroups`` group it takes with ``fromGroup``) has a non-empty
``value``, ``generateValue: true``, ``sync: false`` (the dashboard asks for it), ``fromDatabase``
or ``fromService``; a ``fromService`` with ``envVarKey`` counts when that service of the
Blueprint gives that key (a service outside the Blueprint is taken on trust).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnistack_core.cli.platforms.processes import (
    PlatformFile,
    PlatformFileError,
    Process,
    ProcessKind,
    Setting,
    command_kind,
    declared,
    gap,
    literal,
    text_of,
)
from omnistack_core.cli.platforms.yaml_files import yaml_documents

FILE = "render.yaml"
# The service types that run the service's image, and what each runs unless its command says.
_PROCESS_TYPES: dict[str, ProcessKind] = {
    "web": "api",
    "pserv": "api",
    "worker": "worker",
    "cron": "worker",
}


def read(root: Path) -> list[PlatformFile]:
    """The processes ``render.yaml`` starts; none when the service has no such file.

    Raises:
        PlatformFileError: The file is not a Blueprint the check can read.
    """
    path = root / FILE
    if not path.is_file():
        return []
    documents = yaml_documents(path, root)
    blueprint = documents[0] if documents else {}
    if not isinstance(blueprint, dict):
        raise PlatformFileError(f"{FILE}: not a Blueprint (a mapping with services:)")
    blueprint_env = _BlueprintEnv(blueprint)
    processes: list[Process] = []
    for service in blueprint.get("services") or []:
        service_type = service.get("type")
        if service_type not in _PROCESS_TYPES:
            continue  # Key Value, Redis: not the service's code
        name = f"{service_type} service {service.get('name')}"
        settings = blueprint_env.settings(service)
        command = service.get("dockerCommand") or service.get("startCommand")
        kind = command_kind(command) or _PROCESS_TYPES[service_type]
        processes.append(Process(name, kind, settings))
        pre_deploy = service.get("preDeployCommand")
        if pre_deploy:
            kind = command_kind(pre_deploy) or "migration"
            processes.append(Process(f"{name}, preDeployCommand", kind, settings))
    return [PlatformFile("render", FILE, tuple(processes))]


class _BlueprintEnv:
    """The variables of the Blueprint's services, references between them resolved."""

    def __init__(self, blueprint: dict[str, Any]) -> None:
        self._services = {
            str(service.get("name")): service for service in blueprint.get("services") or []
        }
        self._groups = {
            str(group.get("name")): group.get("envVars") or []
            for group in blueprint.get("envVarGroups") or []
        }

    def settings(
        self, service: dict[str, Any], seen: frozenset[str] = frozenset()
    ) -> dict[str, Setting]:
        """How the Blueprint gives ``service`` each of its variables."""
        found: dict[str, Setting] = {}
        for entry in service.get("envVars") or []:
            if "fromGroup" in entry:
                group = str(entry["fromGroup"])
                for grouped in self._groups.get(group, []):
                    found[str(grouped.get("key"))] = self._entry(grouped, seen, f"group {group}")
            elif "key" in entry:
                found[str(entry["key"])] = self._entry(entry, seen, "")
        return found

    def _entry(self, entry: dict[str, Any], seen: frozenset[str], group: str) -> Setting:
        where = f" (envVarGroups {group})" if group else ""
        if "value" in entry:
            return literal(text_of(entry["value"]), f"value{where}")
        if entry.get("generateValue") is True:
            return declared(f"generateValue{where}")
        if entry.get("sync") is False:
            return declared(f"sync: false{where} (asked for when the Blueprint is created)")
        if "fromDatabase" in entry:
            database = entry["fromDatabase"] or {}
            return declared(f"fromDatabase {database.get('name')} {database.get('property')}")
        if "fromService" in entry:
            return self._from_service(entry["fromService"] or {}, seen)
        return gap(f"envVars{where}", "listed without a value or a source")

    def _from_service(self, reference: dict[str, Any], seen: frozenset[str]) -> Setting:
        name = str(reference.get("name"))
        key = reference.get("envVarKey")
        if key is None:
            return declared(f"fromService {name} {reference.get('property')}")
        source = f"fromService {name} {key}"
        target = self._services.get(name)
        if target is None:
            return declared(f"{source} (a service outside the Blueprint)")
        if name in seen:
            return gap(source, f"taken from {name}'s {key}, which takes it back (a cycle)")
        given = self.settings(target, seen | {name}).get(str(key))
        if given is None:
            return gap(source, f"taken from {name}'s {key}, which {name} does not set")
        return Setting(source, given.values, given.gap)
