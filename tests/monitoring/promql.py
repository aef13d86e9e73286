"""What the monitoring tests need to know about PromQL and about the metrics we export."""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import prometheus_client

import omnistack_core

REPOSITORY = Path(__file__).resolve().parents[2]
MONITORING = REPOSITORY / "monitoring"
RULE_FILES = sorted((MONITORING / "prometheus").glob("*.yml"))
DASHBOARDS = sorted((MONITORING / "grafana").glob("*.json"))

# Labels, strings and durations are not names: take them out before looking for names.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_NUMBER = re.compile(r"(?<![\w:])\d[\w.]*")
# Grafana's variables ($job, $__rate_interval, ${datasource}).
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENTIFIER = re.compile(r"[A-Za-z_:][\w:]*(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
     "group_right", "offset", "inf", "nan"}
)  # fmt: skip
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*(\{[^{}]*\})?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (identifiers that are not calls or keywords)."""
    text = _STRING.sub(" ", _VARIABLE.sub(" ", expr))
    for pattern in (_MATCHERS, _RANGE, _LABEL_LIST, _OFFSET, _NUMBER):
        text = pattern.sub(" ", text)
    return {
        match.group(0)
        for match in _IDENTIFIER.finditer(text)
        if match.group(1) is None and match.group(0).lower() not in _KEYWORDS
    }


def selectors(expr: str) -> list[tuple[str, str]]:
    """Each metric a query reads, with its label matchers as written (``""`` when none)."""
    names = metric_names(expr)
    # Matchers may hold anything (regexes, quotes); look names up in the expression with its
    # strings blanked to the same length, so positions still line up.
    blanked = _STRING.sub(lambda match: '"' + " " * (len(match.group(0)) - 2) + '"', expr)
    found = []
    for match in _SELECTOR.finditer(blanked):
        if match.group(1) in names:
            start, end = match.span(2) if match.group(2) else (0, 0)
            found.append((match.group(1), expr[start:end]))
    return found


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family as registered: its name in the exposition and its type."""

    name: str
    type: str

    def series_names(self) -> set[str]:
        """The series names Prometheus stores for this family."""
        if self.type == "counter":
            return {f"{self.name}_total"}
        if self.type == "histogram":
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        return {self.name}


def exported_families() -> list[Family]:
    """Every metric family the library registers, read from its registry.

    Every module is imported first, since modules register their metrics at import; the
    client's own process, platform and garbage-collector families are left out.
    """
    for module in pkgutil.walk_packages(omnistack_core.__path__, "omnistack_core."):
        importlib.import_module(module.name)
    defaults = {
        family.name
        for collector in (
            prometheus_client.PROCESS_COLLECTOR,
            prometheus_client.PLATFORM_COLLECTOR,
            prometheus_client.GC_COLLECTOR,
        )
        for family in collector.collect()
    }
    return [
        Family(family.name, family.type)
        for family in prometheus_client.REGISTRY.collect()
        if family.name not in defaults
    ]


def exported_series_names() -> set[str]:
    """Every series name a scrape of an OmniStack service can hold."""
    return {name for family in exported_families() for name in family.series_names()}
