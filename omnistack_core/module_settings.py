"""The base of every module's settings, and the requirements a settings class declares.

Each module owns its variables: its settings class subclasses :class:`ModuleSettings` and
declares only what the module reads (plus ``ENVIRONMENT``, which every module judges its
values against). When a variable is needed is declared once, with :func:`required`::

    class MailSettings(ModuleSettings):
        module = "mail"

        mail_provider: Literal["smtp", "console"] | None = None
        smtp_host: str | None = None

        _mail_provider_required = required(
            "mail_provider", environments=DEPLOYED, default="console", hint="smtp or console"
        )
        _smtp_host_required = required("smtp_host", when=[When("mail_provider", "smtp")])

That one declaration validates the settings (a missing variable is a problem named after it)
and describes them: ``omnistack env``, ``omnistack check-config`` and the platform-file check
all read the same :class:`Requirement`.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from omnistack_core.errors import OmniStackError

Environment = Literal["development", "test", "staging", "production"]
ENVIRONMENTS: tuple[Environment, ...] = get_args(Environment)
LOCAL: tuple[Environment, ...] = ("development", "test")
"""Where a developer runs the service: local defaults apply."""
DEPLOYED: tuple[Environment, ...] = ("staging", "production")
"""Where the service is deployed: every real credential is needed."""
OUTSIDE_DEVELOPMENT: tuple[Environment, ...] = ("test", "staging", "production")

_ALIASES = {"dev": "development", "prod": "production", "stage": "staging"}


@dataclass(frozen=True, slots=True, init=False)
class When:
    """A condition on another variable of the same settings class.

    Holds when the other variable equals one of ``values``, or, with ``prefix``, when it (or
    any item of a list) starts with it.
    """

    field: str
    values: tuple[str, ...] = ()
    prefix: str | None = None

    def __init__(self, field: str, *values: str, prefix: str | None = None) -> None:
        object.__setattr__(self, "field", field)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "prefix", prefix)

    def match(self, value: Any) -> str | None:
        """The part of ``value`` that meets the condition, or None.

        A list, or a string listing several (``a,b`` or JSON), is matched item by item.
        """
        items = value if isinstance(value, list | tuple) else _items(_plain(value))
        for item in items:
            text = _plain(item)
            if not isinstance(text, str):
                continue
            if text in self.values or (self.prefix is not None and text.startswith(self.prefix)):
                return text
        return None

    def describe(self, prefix: str = "") -> str:
        """The condition in words: ``EMAIL_PROVIDER=resend``."""
        name = f"{prefix}{self.field.upper()}"
        if self.prefix is not None:
            return f"{name} starts with {self.prefix}"
        return f"{name}={' or '.join(self.values)}"


@dataclass(frozen=True, slots=True)
class Requirement:
    """When a variable must be set, and what it is when it need not be.

    The variable is required in ``environments`` when ``when`` is empty or any of its
    conditions holds. Where it is not required and unset, it takes ``default`` (a callable
    is called once per load: a fresh development key, say).

    Attributes:
        field: The settings field (the variable in lower case).
        module: The module that needs it (``core``, ``billing``), for the messages.
        environments: The environments in which it can be required.
        when: Conditions on other variables, any of which makes it required.
        default: The value taken where it is not required and unset.
        hint: What to set, in a few words: ``a Stripe secret key (sk_…)``.
        default_text: The default in words, for listings, when ``default`` is a callable.
    """

    field: str
    module: str
    environments: tuple[Environment, ...] = ENVIRONMENTS
    when: tuple[When, ...] = ()
    default: Any = None
    hint: str = ""
    default_text: str = ""

    def reason(
        self, environment: str | None, values: Mapping[str, Any], prefix: str = ""
    ) -> str | None:
        """Why the variable is required with these values (``ENVIRONMENT=production``), or None.

        Args:
            environment: The validated ``ENVIRONMENT``; None when it is invalid.
            values: The other variables' values by field name.
            prefix: The variables' prefix (``OMNISTACK_``), so the reason names what was set.
        """
        if environment is None or environment not in self.environments:
            return None
        if not self.when:
            return f"{prefix}ENVIRONMENT={environment}"
        for condition in self.when:
            matched = condition.match(values.get(condition.field))
            if matched is not None:
                return f"{prefix}{condition.field.upper()}={matched}"
        return None

    def message(self, reason: str) -> str:
        """The problem reported when the variable is missing for ``reason``."""
        owner = f"with the {self.module} module " if self.module != "core" else ""
        return f"required {owner}when {reason}" + (f": {self.hint}" if self.hint else "")

    def describe(self, prefix: str = "") -> str:
        """When it is required, in words, for listings: ``in staging and production``."""
        places = _environments_in_words(self.environments)
        if not self.when:
            return places
        conditions = " or ".join(condition.describe(prefix) for condition in self.when)
        return f"when {conditions}" if places == "always" else f"{places}, when {conditions}"

    def resolve(self, value: Any, environment: str | None, values: Mapping[str, Any]) -> Any:
        """``value``, or the default when it is unset and not required.

        Raises:
            UnmetRequirementError: It is unset and required; the message names why.
        """
        if not is_unset(value):
            return value
        if self.reason(environment, values) is not None:
            raise UnmetRequirementError(self, environment, values)
        if environment is None or self.default is None:
            # ENVIRONMENT is invalid and reported (nothing to judge against), or the field's
            # own default stands.
            return value
        return self.default() if callable(self.default) else self.default


class UnmetRequirementError(OmniStackError, ValueError):
    """A variable is unset where its requirement holds; what its validator raises.

    Its message names the variables without a prefix: loading the settings under one
    (:func:`~omnistack_core.load_settings` with ``env_prefix``) reports :meth:`message` with
    it, so the problem names what the operator sets.

    Attributes:
        requirement: The requirement that holds.
    """

    def __init__(
        self, requirement: Requirement, environment: str | None, values: Mapping[str, Any]
    ) -> None:
        self.requirement = requirement
        # Only the names and values of the conditions are kept: never a secret's value.
        self._environment = environment
        self._conditions = {
            condition.field: values.get(condition.field) for condition in requirement.when
        }
        super().__init__(self.message())

    def message(self, prefix: str = "") -> str:
        """The problem, naming the variables with ``prefix``."""
        reason = self.requirement.reason(self._environment, self._conditions, prefix)
        return self.requirement.message(reason or "")


def required(
    field: str,
    *,
    module: str,
    environments: Sequence[Environment] = ENVIRONMENTS,
    when: Sequence[When] = (),
    default: Any = None,
    hint: str = "",
    default_text: str = "",
) -> Any:
    """Declare when ``field`` is required, as a validator of the settings class.

    Assign it to a class attribute whose name is unique across modules (settings classes
    are composed into one): ``_billing_secret_key_required = required(...)``.

    Returns:
        The validator; :func:`requirements_of` finds its :class:`Requirement`.
    """
    requirement = Requirement(
        field, module, tuple(environments), tuple(when), default, hint, default_text
    )
    return requirement_validator(requirement)


def requirement_validator(requirement: Requirement) -> Any:
    """The pydantic validator that enforces ``requirement`` on its field."""

    def check(cls: type[Any], value: Any, info: ValidationInfo) -> Any:  # noqa: ARG001
        return requirement.resolve(value, info.data.get("environment"), info.data)

    check.__omnistack_requirement__ = requirement  # type: ignore[attr-defined]
    return field_validator(requirement.field, mode="after")(check)


def requirements_of(settings_class: type[BaseSettings]) -> list[Requirement]:
    """The requirements ``settings_class`` (and the classes it composes) declares."""
    found = []
    for decorator in settings_class.__pydantic_decorators__.field_validators.values():
        requirement = getattr(decorator.func, "__omnistack_requirement__", None)
        if isinstance(requirement, Requirement):
            found.append(requirement)
    return found


def normalized_environment(value: str) -> str:
    """``ENVIRONMENT`` as the settings read it: lower case, ``prod`` as ``production``...

    The result may still be no environment at all (``live``); the settings refuse those.
    """
    value = value.strip().lower()
    return _ALIASES.get(value, value)


def is_unset(value: Any) -> bool:
    """Whether a variable's value counts as not set: None, empty, or an empty secret."""
    value = _plain(value)
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


class ModuleSettings(BaseSettings):
    """The base of a module's settings: its own variables, read from the environment.

    Field names are the variable names in lower case (``stripe_secret_key`` reads
    ``STRIPE_SECRET_KEY``, or ``<PREFIX>STRIPE_SECRET_KEY`` when loaded with a prefix). Every
    module's settings start with ``ENVIRONMENT``; validators that read another field see the
    fields declared before theirs.

    Attributes:
        module: The module's name, in messages and variable listings.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        validate_default=True,
        # Field descriptions come from the attribute docstrings, read by field_descriptions
        # below when a listing asks, rather than pydantic's use_attribute_docstrings: its
        # reader scans every loaded module for each class on Python < 3.13, which made the
        # settings classes the largest part of our own start-up.
        # JSON values (BILLING_PLANS, AI_PRICES) are decoded by _json_settings below, not by
        # pydantic-settings: its decoding error stopped loading at the first bad value, named
        # no variable pydantic reports, and hid every other problem.
        enable_decoding=False,
    )

    module: ClassVar[str] = ""

    environment: Environment = "development"
    """Where the service runs: development, test, staging or production (``dev``, ``prod``
    and ``stage`` are read as those)."""

    @field_validator("environment", mode="before")
    @classmethod
    def _environment_in_lower_case(cls, value: Any) -> Any:
        return normalized_environment(value) if isinstance(value, str) else value

    @field_validator("*", mode="before")
    @classmethod
    def _json_settings(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or info.field_name not in json_fields(cls):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("must be valid JSON") from None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        requirements = requirements_of(cls)
        _check_defaults(cls, requirements)
        order = list(cls.model_fields)
        for requirement in requirements:
            for condition in requirement.when:
                # A validator sees only the fields validated before its own.
                if condition.field not in order or order.index(condition.field) > order.index(
                    requirement.field
                ):
                    raise TypeError(
                        f"{cls.__name__}: {requirement.field} is required on a condition on "
                        f"{condition.field}, which must be declared before it"
                    )


@functools.cache
def json_fields(settings_class: type[BaseSettings]) -> frozenset[str]:
    """The fields of ``settings_class`` whose variables hold JSON: objects and lists.

    Fields marked ``NoDecode`` parse their text themselves (comma-separated lists).
    """
    return frozenset(
        name
        for name, field in settings_class.model_fields.items()
        if NoDecode not in field.metadata and _holds_json(field.annotation)
    )


def _holds_json(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_holds_json(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in (dict, list, tuple, set, frozenset):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _check_defaults(cls: type[BaseSettings], requirements: list[Requirement]) -> None:
    """Refuse requirements of one field that would hide each other.

    The validators of one field run one after another: once one has filled in its default,
    the next sees a value. So a field has at most one default, and every other requirement of
    it applies only where the default's requirement applies too.
    """
    for requirement in requirements:
        if requirement.default is None:
            continue
        for other in requirements:
            if other is requirement or other.field != requirement.field:
                continue
            if other.default is not None or not set(other.environments) <= set(
                requirement.environments
            ):
                raise TypeError(
                    f"{cls.__name__}: the requirements of {requirement.field} of the "
                    f"{requirement.module} and {other.module} modules conflict: one would "
                    "fill in a default where the other requires a value"
                )


def _items(value: Any) -> list[Any]:
    if not isinstance(value, str):
        return [value]
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return [value]
        return parsed if isinstance(parsed, list) else [value]
    return [part.strip() for part in text.split(",")] if "," in text else [text]


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _environments_in_words(environments: Sequence[str]) -> str:
    if set(environments) >= set(ENVIRONMENTS):
        return "always"
    if tuple(environments) == OUTSIDE_DEVELOPMENT:
        return "outside development"
    names = list(environments)
    return "in " + (" and ".join(names) if len(names) <= 2 else ", ".join(names))


def field_descriptions(settings_class: type[ModuleSettings]) -> dict[str, str]:
    """What each field of ``settings_class`` is, from the docstring written under it.

    A field described with ``Field(description=...)`` keeps that; the others take the
    docstring under their declaration, in this class or the base class that declares them.
    Read from the source when asked rather than as each class is made: only the variable
    listings need them, and reading source was the costliest part of making a settings class
    (about 25 ms of a service's start). A class without source (made by ``type()``, or an
    install of bytecode only) has no docstrings to give.
    """
    found: dict[str, str] = {}
    # Only the settings classes: pydantic's own bases declare no fields to read.
    for cls in reversed(settings_class.__mro__):
        if issubclass(cls, ModuleSettings):
            found.update(_docstrings_of(cls))
    return {
        name: field.description or found[name]
        for name, field in settings_class.model_fields.items()
        if field.description or name in found
    }


@functools.cache
def _docstrings_of(cls: type[ModuleSettings]) -> dict[str, str]:
    """The docstrings under the annotated attributes of ``cls``'s own class statement."""
    try:
        block = inspect.getsourcelines(cls)[0]
    except (OSError, TypeError):
        return {}
    # An indented class (made in a function) parses inside a function of the same indent.
    source = "".join(block)
    if block[0][:1].isspace():
        source = "def _enclosing():\n" + source
    try:
        statement = ast.parse(source).body[0]
    except SyntaxError:
        return {}
    if isinstance(statement, ast.FunctionDef):
        statement = statement.body[0]
    if not isinstance(statement, ast.ClassDef) or statement.name != cls.__name__:
        return {}
    return {
        attribute.target.id: inspect.cleandoc(following.value.value)
        for attribute, following in itertools.pairwise(statement.body)
        if isinstance(attribute, ast.AnnAssign)
        and isinstance(attribute.target, ast.Name)
        and isinstance(following, ast.Expr)
        and isinstance(following.value, ast.Constant)
        and isinstance(following.value.value, str)
    }
