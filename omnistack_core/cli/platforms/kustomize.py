"""The part of ``kustomize build`` that decides what reaches a container's environment.

``kubectl`` is not among a service's dependencies, so the check resolves an overlay itself:
``resources`` (files and kustomization directories, built recursively), ``components``,
``configMapGenerator`` and ``secretGenerator`` (``literals``, ``envs``, ``files``;
``behavior: create``, ``merge`` or ``replace``), and the patches, in kustomize's order:
``patchesStrategicMerge``, ``patches`` (strategic merge or JSON 6902, with a ``target`` of
kind, name, namespace, group, version, label and annotation selectors) and
``patchesJson6902``. Strategic merges use Kubernetes' merge keys for the lists of a pod
(containers and env by name, volume mounts by path...) and honour ``$patch: delete`` and
``$patch: replace``. What does not change an environment (images, replicas, namespaces,
labels, name prefixes and the hash suffixes of generated names) is left out, so ConfigMaps
and Secrets keep the names references use in the files. Remote resources, Helm charts,
generator and transformer plugins, ``replacements`` and ``vars`` are not resolved.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from pathlib import Path
from typing import Any

from omnistack_core.cli.platforms.processes import PlatformFileError
from omnistack_core.cli.platforms.yaml_files import relative, yaml_documents, yaml_text

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_REMOTE = re.compile(r"^(https?://|git@|ssh://|github\.com/|gitlab\.com/)|\?ref=|//")
# Kubernetes' patch merge keys for the lists of a pod template: the other lists are replaced.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}


def kustomization_file(directory: Path) -> Path | None:
    """The kustomization file of ``directory``, or None."""
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def build(directory: Path, root: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build directory`` outputs, as far as environments go.

    Generated Secrets hold their values in ``stringData``, in plain text.

    Args:
        directory: A kustomization directory (an overlay).
        root: The service's root, which messages name paths from.

    Raises:
        PlatformFileError: A file is missing or invalid, or uses what is not resolved here.
    """
    # Resolved, as the paths the builder follows are: messages name them from the root.
    return _Builder(root.resolve()).build(directory.resolve(), [])


def secret_data(secret: dict[str, Any]) -> dict[str, str | None]:
    """A Secret's keys and their values; None for one that is not base64 text."""
    found: dict[str, str | None] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            found[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            found[str(key)] = None
    for key, value in (secret.get("stringData") or {}).items():
        found[str(key)] = str(value)
    return found


class _Builder:
    """Builds kustomization directories, naming files from ``root`` in its messages."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def build(self, directory: Path, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add what ``directory`` makes to ``objects`` (empty, unless it is a component)."""
        file = kustomization_file(directory)
        if file is None:
            raise PlatformFileError(f"{relative(directory, self._root)}: no kustomization.yaml")
        documents = yaml_documents(file, self._root)
        kustomization = documents[0] if documents else {}
        if not isinstance(kustomization, dict):
            raise PlatformFileError(f"{relative(file, self._root)}: not a kustomization")
        for entry in [*(kustomization.get("resources") or []), *(kustomization.get("bases") or [])]:
            objects += self._resources(directory, str(entry))
        for entry in kustomization.get("components") or []:
            objects = self.build(self._local(directory, str(entry)), objects)
        for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
            for generator in kustomization.get(key) or []:
                self._generate(kind, generator, directory, objects)
        for patch in kustomization.get("patchesStrategicMerge") or []:
            for document in self._patch_documents(directory, patch):
                self._merge_into_named(document, objects)
        for patch in kustomization.get("patches") or []:
            self._apply(directory, patch, objects, json_patch_only=False)
        for patch in kustomization.get("patchesJson6902") or []:
            self._apply(directory, patch, objects, json_patch_only=True)
        return objects

    def _local(self, directory: Path, entry: str) -> Path:
        if _REMOTE.search(entry):
            raise PlatformFileError(
                f"{relative(directory, self._root)}: {entry} is remote; the check resolves "
                "local files only"
            )
        return (directory / entry).resolve()

    def _resources(self, directory: Path, entry: str) -> list[dict[str, Any]]:
        path = self._local(directory, entry)
        if path.is_dir():
            return self.build(path, [])
        if not path.is_file():
            raise PlatformFileError(f"{relative(directory, self._root)}: no resource {entry}")
        objects: list[dict[str, Any]] = []
        for document in yaml_documents(path, self._root):
            if isinstance(document, dict) and document.get("kind") == "List":
                objects += [item for item in document.get("items") or [] if isinstance(item, dict)]
            elif isinstance(document, dict):
                objects.append(document)
        return objects

    def _generate(
        self, kind: str, generator: dict[str, Any], directory: Path, objects: list[dict[str, Any]]
    ) -> None:
        name = str(generator.get("name"))
        data: dict[str, str] = {}
        for item in generator.get("literals") or []:
            key, _, value = str(item).partition("=")
            data[key.strip()] = _unquoted(value)
        env_files = [
            *(generator.get("envs") or []),
            *([generator["env"]] if "env" in generator else []),
        ]
        for env_file in env_files:
            data.update(self._env_file(self._local(directory, str(env_file))))
        for item in generator.get("files") or []:
            key, equals, file = str(item).partition("=")
            if not equals:
                key, file = Path(key).name, key
            path = self._local(directory, file)
            if not path.is_file():
                raise PlatformFileError(f"{relative(directory, self._root)}: no file {file}")
            data[key] = path.read_text()
        field = "data" if kind == "ConfigMap" else "stringData"
        behavior = generator.get("behavior", "create")
        existing = [obj for obj in objects if obj.get("kind") == kind and _name(obj) == name]
        if behavior == "create":
            if existing:
                raise PlatformFileError(
                    f"{relative(directory, self._root)}: {kind} {name} is generated twice "
                    "(behavior: merge adds to it)"
                )
            objects.append(
                {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, field: data}
            )
            return
        if not existing:
            raise PlatformFileError(
                f"{relative(directory, self._root)}: behavior: {behavior} of {kind} {name}, "
                "which no resource or base generates"
            )
        target = existing[0]
        if kind == "Secret" and behavior == "merge":
            # Merged as text: values of a base's Secret stay readable.
            data = {**{k: v or "" for k, v in secret_data(target).items()}, **data}
            target.pop("data", None)
        elif behavior == "merge":
            data = {**(target.get(field) or {}), **data}
        elif kind == "Secret":
            target.pop("data", None)
        target[field] = data

    def _env_file(self, path: Path) -> dict[str, str]:
        if not path.is_file():
            raise PlatformFileError(f"{relative(path, self._root)}: no such env file")
        found: dict[str, str] = {}
        for line in path.read_text().splitlines():
            line = line.strip()  # noqa: PLW2901 - the line, trimmed
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                found[key.strip()] = value
        return found

    def _patch_documents(self, directory: Path, patch: Any) -> list[Any]:
        if isinstance(patch, str) and "\n" not in patch and not patch.lstrip().startswith("{"):
            return yaml_documents(self._local(directory, patch), self._root)
        return yaml_text(str(patch), relative(directory, self._root))

    def _apply(
        self,
        directory: Path,
        patch: dict[str, Any],
        objects: list[dict[str, Any]],
        *,
        json_patch_only: bool,
    ) -> None:
        if "path" in patch:
            documents = yaml_documents(self._local(directory, str(patch["path"])), self._root)
        else:
            documents = yaml_text(str(patch.get("patch") or ""), relative(directory, self._root))
        target = patch.get("target")
        where = relative(directory, self._root)
        for document in documents:
            if isinstance(document, list):
                if not isinstance(target, dict):
                    raise PlatformFileError(f"{where}: a JSON 6902 patch needs a target")
                for obj in objects:
                    if _is_selected(obj, target):
                        _json_patch(obj, document, where)
            elif json_patch_only:
                raise PlatformFileError(f"{where}: patchesJson6902 takes a list of operations")
            elif isinstance(target, dict):
                merge = _targeted(document)
                for index, obj in enumerate(objects):
                    if _is_selected(obj, target):
                        objects[index] = _strategic_merge(obj, merge)
            else:
                self._merge_into_named(document, objects)

    def _merge_into_named(self, patch: Any, objects: list[dict[str, Any]]) -> None:
        if not isinstance(patch, dict):
            return
        matches = [
            index
            for index, obj in enumerate(objects)
            if obj.get("kind") == patch.get("kind") and _name(obj) == _name(patch)
        ]
        if len(matches) != 1:
            raise PlatformFileError(
                f"a patch of {patch.get('kind')} {_name(patch)} matches {len(matches)} objects"
            )
        objects[matches[0]] = _strategic_merge(objects[matches[0]], patch)


def _targeted(patch: dict[str, Any]) -> dict[str, Any]:
    """A strategic merge patch for any target: its own kind and name do not count."""
    targeted = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind", "metadata")}
    metadata = {
        k: v for k, v in (patch.get("metadata") or {}).items() if k not in ("name", "namespace")
    }
    if metadata:
        targeted["metadata"] = metadata
    return targeted


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _unquoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _is_selected(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether a patch's ``target`` selects ``obj`` (kind, name, namespace... are regexes)."""
    metadata = obj.get("metadata") or {}
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    fields = {
        "kind": str(obj.get("kind", "")),
        "name": str(metadata.get("name", "")),
        "namespace": str(metadata.get("namespace", "")),
        "group": group,
        "version": version,
    }
    if not all(
        re.fullmatch(str(target[key]), value) for key, value in fields.items() if key in target
    ):
        return False
    selectors = (
        ("labelSelector", metadata.get("labels") or {}),
        ("annotationSelector", metadata.get("annotations") or {}),
    )
    return all(_matches(str(target[key]), found) for key, found in selectors if key in target)


_TERM = re.compile(
    r"\s*(?:(?P<absent>!)\s*(?P<bare_absent>[\w./-]+)"
    r"|(?P<set_key>[\w./-]+)\s+(?P<set_op>in|notin)\s+\((?P<set_values>[^)]*)\)"
    r"|(?P<key>[\w./-]+)\s*(?P<op>==|=|!=)\s*(?P<value>[\w./-]*)"
    r"|(?P<exists>[\w./-]+))\s*"
)


def _matches(selector: str, labels: dict[str, Any]) -> bool:
    """Whether ``labels`` satisfy a Kubernetes label selector string."""
    for term in re.split(r",(?![^()]*\))", selector):
        if not term.strip():
            continue
        found = _TERM.fullmatch(term)
        if found is None:
            raise PlatformFileError(f"cannot read the selector {selector!r}")
        if found["absent"]:
            ok = found["bare_absent"] not in labels
        elif found["set_key"]:
            values = {value.strip() for value in found["set_values"].split(",")}
            inside = str(labels.get(found["set_key"])) in values
            ok = inside if found["set_op"] == "in" else not inside
        elif found["key"]:
            equal = found["key"] in labels and str(labels[found["key"]]) == found["value"]
            ok = not equal if found["op"] == "!=" else equal
        else:
            ok = found["exists"] in labels
        if not ok:
            return False
    return True


def _strategic_merge(original: Any, patch: Any) -> Any:
    """``patch`` merged into ``original`` as a strategic merge patch (a new object)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _without_directives(patch)
    merged = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # $setElementOrder, $retainKeys: order and pruning, not content
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(merged.get(key), list):
            merged[key] = _merge_list(merged[key], value, _MERGE_KEYS[key])
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            if value.get("$patch") == "delete":
                merged.pop(key)
            else:
                merged[key] = _strategic_merge(merged[key], value)
        else:
            merged[key] = _without_directives(value)
    return merged


def _merge_list(original: list[Any], patch: list[Any], key: str) -> list[Any]:
    """Merge by ``key``, in kustomize's order: the patch's items, then the others kept."""
    if any(isinstance(item, dict) and item.get("$patch") == "replace" for item in patch):
        return [
            _without_directives(item)
            for item in patch
            if not (isinstance(item, dict) and item.get("$patch") == "replace")
        ]
    keyed = {old[key]: old for old in original if isinstance(old, dict) and key in old}
    merged: list[Any] = []
    touched: set[Any] = set()
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            merged.append(_without_directives(item))
            continue
        touched.add(item[key])
        if item.get("$patch") == "delete":
            continue
        old = keyed.get(item[key])
        merged.append(_without_directives(item) if old is None else _strategic_merge(old, item))
    kept = [
        copy.deepcopy(old)
        for old in original
        if not (isinstance(old, dict) and old.get(key) in touched)
    ]
    return merged + kept


def _without_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_directives(v) for k, v in value.items() if not str(k).startswith("$")}
    if isinstance(value, list):
        return [_without_directives(item) for item in value]
    return copy.deepcopy(value)


def _json_patch(obj: dict[str, Any], operations: list[Any], where: str) -> None:
    """Apply RFC 6902 ``operations`` to ``obj`` in place."""
    for operation in operations:
        op = operation.get("op") if isinstance(operation, dict) else None
        try:
            path = _pointer(str(operation["path"]))
            if op in ("add", "replace"):
                _put(obj, path, copy.deepcopy(operation["value"]), insert=op == "add")
            elif op == "remove":
                _remove(obj, path)
            elif op in ("copy", "move"):
                source = _pointer(str(operation["from"]))
                value = copy.deepcopy(_get(obj, source))
                if op == "move":
                    _remove(obj, source)
                _put(obj, path, value, insert=True)
            elif op == "test":
                if _get(obj, path) != operation.get("value"):
                    raise PlatformFileError(
                        f"{where}: a JSON patch test fails at {operation['path']}"
                    )
            else:
                raise PlatformFileError(f"{where}: unknown JSON patch operation {op!r}")
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PlatformFileError(
                f"{where}: a JSON patch operation does not apply ({type(exc).__name__}: {exc})"
            ) from None


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _get(obj: Any, path: list[str]) -> Any:
    for part in path:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def _put(obj: Any, path: list[str], value: Any, *, insert: bool) -> None:
    parent = _get(obj, path[:-1])
    last = path[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif insert:
            parent.insert(int(last), value)
        else:
            parent[int(last)] = value
    elif not insert and last not in parent:
        raise KeyError(last)
    else:
        parent[last] = value


def _remove(obj: Any, path: list[str]) -> None:
    parent = _get(obj, path[:-1])
    del parent[int(path[-1]) if isinstance(parent, list) else path[-1]]
