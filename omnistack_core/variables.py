"""The variables a service reads, derived from its modules' settings classes.

Each module declares its variables once, in its settings class: type, default, a docstring,
and when they are required (:func:`~omnistack_core.module_settings.required`). This module
turns those declarations into one machine-readable listing (``omnistack env``), so the
platform-file check, ``.env`` listings and docs never keep a second, hand-made copy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from omnistack_core.module_settings import (
    ENVIRONMENTS,
    ModuleSettings,
    Requirement,
    field_descriptions,
    requirements_of,
)
from omnistack_core.settings import Settings

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from omnistack_core.module import Module


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable of a service.

    Attributes:
        name: The variable, as set in the environment (``STRIPE_SECRET_KEY``).
        field: The settings field it sets (``stripe_secret_key``).
        module: The module that reads it (``core``, ``billing``).
        secret: Whether its value is a secret (never printed, never in plain platform files).
        default: Its default in words, or None when it has none.
        requirements: When it is required.
        description: What it is, in one line.
        prefix: The prefix every variable of the service carries (``OMNISTACK_``), or "".
    """

    name: str
    field: str
    module: str
    secret: bool
    default: str | None
    requirements: tuple[Requirement, ...]
    description: str
    prefix: str = ""

    def required_because(self, environment: str, values: Mapping[str, str]) -> str | None:
        """Why the variable is required where ``values`` are set, or None.

        Args:
            environment: The ``ENVIRONMENT`` to judge for (``production``).
            values: Other variables' values by variable name; a condition on a variable
                missing here does not hold.
        """
        fields = {
            name.removeprefix(self.prefix).lower(): value
            for name, value in values.items()
            if name.startswith(self.prefix)
        }
        for requirement in self.requirements:
            reason = requirement.reason(environment, fields, self.prefix)
            if reason is not None:
                return requirement.message(reason)
        return None

    def to_json(self) -> dict[str, Any]:
        """The variable as JSON data (``omnistack env --format json``)."""
        return {
            "name": self.name,
            "module": self.module,
            "secret": self.secret,
            "default": self.default,
            "required": [
                {
                    "environments": list(requirement.environments),
                    "when": [
                        {
                            "variable": f"{self.prefix}{condition.field.upper()}",
                            "values": list(condition.values),
                            "prefix": condition.prefix,
                        }
                        for condition in requirement.when
                    ],
                    "description": requirement.describe(self.prefix),
                }
                for requirement in self.requirements
            ],
            "description": self.description,
        }


def variables_of(
    modules: Sequence[Module[Any]],
    *,
    base: type[ModuleSettings] | None = Settings,
    prefix: str = "",
) -> list[Variable]:
    """Every variable ``base`` and ``modules`` read, core first, each once.

    Args:
        modules: The installed modules; their instances can add requirements.
        base: The core's settings class, or None for modules installed into an existing app.
        prefix: The prefix the variables are read under.
    """
    owners: list[tuple[type[ModuleSettings], Sequence[Requirement]]] = []
    if base is not None:
        owners.append((base, ()))
    owners += [
        (module.settings_class, module.requirements())
        for module in modules
        if module.settings_class is not None
    ]
    found: dict[str, Variable] = {}
    for settings_class, extra in owners:
        requirements = [*requirements_of(settings_class), *extra]
        descriptions = field_descriptions(settings_class)
        for field, info in settings_class.model_fields.items():
            mine = tuple(r for r in requirements if r.field == field)
            known = found.get(field)
            if known is not None:
                # Another module reads it too: one variable, every module's requirements.
                new = tuple(r for r in mine if r not in known.requirements)
                found[field] = _with_requirements(known, new)
                continue
            found[field] = Variable(
                name=f"{prefix}{field.upper()}",
                field=field,
                module=settings_class.module or "core",
                secret=_is_secret(info),
                default=_default_text(info, mine),
                requirements=mine,
                description=" ".join(descriptions.get(field, "").replace("``", "").split()),
                prefix=prefix,
            )
    return list(found.values())


def render_dotenv(variables: Iterable[Variable]) -> str:
    """The variables as a commented ``.env`` listing, grouped by module.

    Required variables are set empty; optional ones are commented out with their default.
    """
    lines: list[str] = []
    module = None
    for variable in variables:
        if variable.module != module:
            module = variable.module
            lines += ["", f"# --- {module} ---"] if lines else [f"# --- {module} ---"]
        lines.append(f"# {variable.description}")
        required = [r.describe(variable.prefix) for r in variable.requirements]
        if required:
            lines.append(f"# required {'; '.join(required)}")
        if variable.requirements or variable.default is None:
            lines.append(f"{variable.name}=")
        else:
            lines.append(f"# {variable.name}={variable.default}")
    return "\n".join(lines) + "\n"


def render_json(variables: Iterable[Variable]) -> str:
    """The variables as a JSON document: ``{"variables": [...]}``."""
    return json.dumps({"variables": [v.to_json() for v in variables]}, indent=2) + "\n"


def _with_requirements(variable: Variable, extra: tuple[Requirement, ...]) -> Variable:
    if not extra:
        return variable
    return Variable(
        variable.name,
        variable.field,
        variable.module,
        variable.secret,
        variable.default,
        variable.requirements + extra,
        variable.description,
        variable.prefix,
    )


def _is_secret(info: FieldInfo) -> bool:
    pending: list[Any] = [info.annotation]
    while pending:
        annotation = pending.pop()
        if annotation is SecretStr:
            return True
        pending += get_args(annotation)
    return False


def _default_text(info: FieldInfo, requirements: Sequence[Requirement]) -> str | None:
    for requirement in requirements:
        if requirement.default_text:
            return requirement.default_text
        if requirement.default is not None and not callable(requirement.default):
            elsewhere = [e for e in ENVIRONMENTS if e not in requirement.environments]
            return f"in {' and '.join(elsewhere)}, {requirement.default}"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    else:
        value = None if info.default is PydanticUndefined else info.default
    return _in_words(value)


def _in_words(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
