"""Railway's Infrastructure as Code, ``.railway/railway.py``, read with :mod:`ast`.

The file is Python that railway-sdk evaluates; the check never runs it. It reads the calls to
``service(...)`` and ``database(...)`` (or ``postgres``/``redis``/``mysql``/``mongo``), and
follows names bound by assignment anywhere in the file. Each service runs the API, unless its
start command (``start=``) says otherwise, and its ``preDeploy`` command is one more process
with the service's variables: the migration. A variable of ``env=`` (or ``variables=``)
counts as declared when it is a non-empty string, ``preserve()`` (the value set on Railway by
hand), a reference to a database's variable (``db.env.DATABASE_URL``, ``ref(db, ...)``, a
``${{Postgres.DATABASE_URL}}`` template), or a reference to another service's variable that
that service declares. A conditional expression (``"production" if production else
"staging"``) gives each of its values; any other expression counts as set, value unknown.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from omnistack_core.cli.platforms.processes import (
    PlatformFile,
    PlatformFileError,
    Process,
    Setting,
    command_kind,
    declared,
    either,
    gap,
    literal,
)

FILE = ".railway/railway.py"
_DATABASES = {"database", "postgres", "redis", "mysql", "mongo"}
# Deep enough for any chain of names and references a person writes; stops a cycle.
_MAX_DEPTH = 20


@dataclass(frozen=True, slots=True)
class _Resource:
    kind: str  # "service" or "database"
    name: str
    call: ast.Call


def read(root: Path) -> list[PlatformFile]:
    """The processes ``.railway/railway.py`` declares; none when the service has no such file.

    Raises:
        PlatformFileError: The file is not Python.
    """
    path = root / FILE
    if not path.is_file():
        return []
    try:
        tree = ast.parse(path.read_text(), filename=FILE)
    except SyntaxError as exc:
        raise PlatformFileError(
            f"{FILE}: not valid Python: {exc.msg} (line {exc.lineno})"
        ) from None
    railway = _RailwayFile(tree)
    processes: list[Process] = []
    for resource in railway.services():
        settings = railway.env(resource)
        name = f"service {resource.name}"
        start = railway.command(resource.call, ("start", "startCommand"), "startCommand")
        processes.append(Process(name, command_kind(start) or "api", settings))
        pre_deploy = railway.command(
            resource.call, ("preDeploy", "preDeployCommand"), "preDeployCommand"
        )
        if pre_deploy:
            kind = command_kind(pre_deploy) or "migration"
            processes.append(Process(f"{name}, preDeploy", kind, settings))
    return [PlatformFile("railway", FILE, tuple(processes))]


class _RailwayFile:
    """The file's names, resources and expressions, evaluated as far as reading allows."""

    def __init__(self, tree: ast.Module) -> None:
        self._names: dict[str, ast.expr] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    self._names[target.id] = node.value
            elif (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.value is not None
            ):
                self._names[node.target.id] = node.value
        self._calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]

    def services(self) -> Iterator[_Resource]:
        """The ``service(...)`` calls, in the file's order."""
        for call in sorted(self._calls, key=lambda node: (node.lineno, node.col_offset)):
            resource = self._resource(call)
            if resource is not None and resource.kind == "service":
                yield resource

    def env(self, service: _Resource, depth: int = 0) -> dict[str, Setting]:
        """The service's variables: ``variables=``, then ``env=`` over them, as the SDK merges."""
        settings: dict[str, Setting] = {}
        for keyword in ("variables", "env"):
            value = _keyword(service.call, keyword)
            if value is not None:
                settings.update(self._mapping(value, depth))
        return settings

    def command(self, call: ast.Call, keywords: tuple[str, ...], deploy_key: str) -> str | None:
        """A command given as one of ``keywords``, or in ``deploy={...}``, as text."""
        for keyword in keywords:
            value = _keyword(call, keyword)
            if value is not None:
                return self._text(value)
        deploy = _keyword(call, "deploy")
        if deploy is not None:
            for key, value in self._dict_items(deploy, 0):
                if key == deploy_key:
                    return self._text(value)
        return None

    def _text(self, node: ast.expr) -> str | None:
        # preDeploy takes a list of commands too.
        parts = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
        texts = [" ".join(self._setting(part, 0).values) for part in parts]
        return " && ".join(text for text in texts if text) or None

    def _resource(self, call: ast.Call) -> _Resource | None:
        function = _called(call)
        if function != "service" and function not in _DATABASES:
            return None
        first = call.args[0] if call.args else _keyword(call, "name")
        values = self._setting(first, 0).values if first is not None else ()
        name = values[0] if values else "?"
        return _Resource("service" if function == "service" else "database", name, call)

    def _bound_resource(self, node: ast.expr, depth: int) -> _Resource | None:
        if isinstance(node, ast.Name) and node.id in self._names and depth < _MAX_DEPTH:
            return self._bound_resource(self._names[node.id], depth + 1)
        return self._resource(node) if isinstance(node, ast.Call) else None

    def _mapping(self, node: ast.expr, depth: int) -> dict[str, Setting]:
        return {key: self._setting(value, depth) for key, value in self._dict_items(node, depth)}

    def _dict_items(self, node: ast.expr, depth: int) -> list[tuple[str, ast.expr]]:
        if depth > _MAX_DEPTH:
            return []
        if isinstance(node, ast.Name) and node.id in self._names:
            return self._dict_items(self._names[node.id], depth + 1)
        items: list[tuple[str, ast.expr]] = []
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:  # {**other}
                    items += self._dict_items(value, depth + 1)
                elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                    items.append((key.value, value))
        elif isinstance(node, ast.Call) and _called(node) == "dict":
            for keyword in node.keywords:
                if keyword.arg is None:
                    items += self._dict_items(keyword.value, depth + 1)
                else:
                    items.append((keyword.arg, keyword.value))
        return items

    def _setting(self, node: ast.expr, depth: int) -> Setting:  # noqa: PLR0911 - one case each
        if depth > _MAX_DEPTH:
            return declared("an expression the check does not follow further")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "${{" in node.value:
                return declared("a Railway reference variable (${{...}})")
            return literal(node.value)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return literal(str(node.value).lower())
        if isinstance(node, ast.Name) and node.id in self._names:
            return self._setting(self._names[node.id], depth + 1)
        if isinstance(node, ast.IfExp):
            return either(
                [self._setting(node.body, depth + 1), self._setting(node.orelse, depth + 1)]
            )
        if isinstance(node, ast.JoinedStr | ast.BinOp):
            return self._joined(node, depth)
        if isinstance(node, ast.Call):
            return self._called_setting(node, depth)
        reference = _env_reference(node)
        if reference is not None:
            return self._reference(reference[0], reference[1], depth)
        return declared("an expression the check does not evaluate")

    def _called_setting(self, call: ast.Call, depth: int) -> Setting:
        function = _called(call)
        if function == "preserve":
            return declared("preserve() (the value set on Railway by hand)")
        if function == "str" and len(call.args) == 1:
            return self._setting(call.args[0], depth + 1)
        if function == "ref" and len(call.args) == 2:
            output = self._setting(call.args[1], depth + 1).values
            return self._reference(call.args[0], output[0] if output else "?", depth)
        return declared(f"{function or 'a call'}(...), which the check does not evaluate")

    def _joined(self, node: ast.JoinedStr | ast.BinOp, depth: int) -> Setting:
        parts = _string_parts(node)
        if parts is None:
            return declared("an expression the check does not evaluate")
        texts: list[str] = []
        for part in parts:
            values = self._setting(part, depth + 1).values
            if len(values) != 1:
                return declared("a string built from values the file does not write")
            texts.append(values[0])
        return literal("".join(texts))

    def _reference(self, owner: ast.expr, output: str, depth: int) -> Setting:
        resource = self._bound_resource(owner, depth + 1)
        if resource is None:
            return declared(f"a reference to {output}")
        source = f"a reference to {resource.name}'s {output}"
        if resource.kind == "database":
            return declared(source)
        given = self.env(resource, depth + 1).get(output)
        if given is None:
            why = f"taken from {resource.name}'s {output}, which {resource.name} does not set"
            return gap(source, why)
        return Setting(source, given.values, given.gap)


def _called(call: ast.Call) -> str | None:
    function = call.func
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _env_reference(node: ast.expr) -> tuple[ast.expr, str] | None:
    """``(owner, NAME)`` of ``owner.env.NAME`` or ``owner.env["NAME"]``."""
    if isinstance(node, ast.Attribute) and _is_env(node.value):
        return node.value.value, node.attr
    if isinstance(node, ast.Subscript) and _is_env(node.value):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return node.value.value, key.value
    return None


def _is_env(node: ast.expr) -> TypeGuard[ast.Attribute]:
    return isinstance(node, ast.Attribute) and node.attr == "env"


def _string_parts(node: ast.expr) -> list[ast.expr] | None:
    """The pieces an f-string or a ``+`` of strings joins, or None for another expression."""
    if isinstance(node, ast.JoinedStr):
        return [
            part.value if isinstance(part, ast.FormattedValue) else part for part in node.values
        ]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string_parts(node.left), _string_parts(node.right)
        if left is None or right is None:
            return None
        return left + right
    if isinstance(node, ast.Constant | ast.Name | ast.Call | ast.Attribute | ast.IfExp):
        return [node]
    return None
