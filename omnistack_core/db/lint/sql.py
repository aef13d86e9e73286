"""Just enough of PostgreSQL's lexical rules to read DDL: tokens, statements, names.

The linter reads the SQL Alembic writes and the SQL people pass to ``op.execute``. Both are
DDL of a few well-known shapes, so a tokenizer that gets quoting, comments and parentheses
right, plus a cursor for walking keywords, is all it takes; no full grammar.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<dollar>\$\$.*?\$\$|\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)\$.*?\$(?P=tag)\$)
    | (?P<string>[EeBbXxNn]?'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")*")
    | (?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<symbol>::|[^\s])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Token:
    """One token.

    Attributes:
        kind: ``word``, ``quoted``, ``string``, ``number`` or ``symbol``.
        text: The token as written.
    """

    kind: str
    text: str

    @property
    def keyword(self) -> str:
        """The upper-cased word, or "" for anything that is not a bare word."""
        return self.text.upper() if self.kind == "word" else ""

    @property
    def name(self) -> str:
        """The identifier it spells: bare words fold to lower case, quotes keep case."""
        if self.kind == "quoted":
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement, without its terminating semicolon."""

    tokens: tuple[Token, ...]
    text: str


def split_statements(sql: str) -> Iterator[Statement]:
    """Yield the statements in ``sql``, split at semicolons outside quotes and parentheses."""
    tokens: list[Token] = []
    depth = 0
    start: int | None = None
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind in ("space", "comment"):
            continue
        text = match.group()
        if text == ";" and depth == 0:
            if tokens and start is not None:
                yield Statement(tuple(tokens), _squeeze(sql[start : match.start()]))
            tokens, start = [], None
            continue
        if start is None:
            start = match.start()
        depth += {"(": 1, ")": -1}.get(text, 0)
        tokens.append(Token("string" if kind == "dollar" else str(kind), text))
    if tokens and start is not None:
        yield Statement(tuple(tokens), _squeeze(sql[start:]))


def _squeeze(text: str) -> str:
    return " ".join(text.split())


class Cursor:
    """Walks a token sequence: keyword tests, names, balanced parentheses."""

    def __init__(self, tokens: tuple[Token, ...] | list[Token]) -> None:
        self.tokens = tuple(tokens)
        self.position = 0

    @property
    def done(self) -> bool:
        """Whether every token has been consumed."""
        return self.position >= len(self.tokens)

    def peek(self, offset: int = 0) -> str:
        """The keyword ``offset`` tokens ahead ("" past the end or for a non-word)."""
        index = self.position + offset
        return self.tokens[index].keyword if index < len(self.tokens) else ""

    def accept(self, *words: str) -> bool:
        """Consume ``words`` if the next tokens are exactly those keywords."""
        if all(self.peek(offset) == word for offset, word in enumerate(words)):
            self.position += len(words)
            return True
        return False

    def take(self) -> Token | None:
        """Consume and return the next token."""
        if self.done:
            return None
        token = self.tokens[self.position]
        self.position += 1
        return token

    def qualified_name(self) -> str:
        """Consume ``name`` or ``schema.name`` and return it as :func:`table_key` spells it."""
        parts = []
        token = self.take()
        while token is not None and token.kind in ("word", "quoted"):
            parts.append(token.name)
            if self.done or self.tokens[self.position].text != ".":
                break
            self.position += 1
            token = self.take()
        return table_key(parts[-1], parts[-2] if len(parts) > 1 else None) if parts else ""

    def rest(self) -> tuple[Token, ...]:
        """Consume and return every remaining token."""
        remaining = self.tokens[self.position :]
        self.position = len(self.tokens)
        return remaining


def table_key(name: str, schema: str | None = None) -> str:
    """How tables are compared: ``name`` in the default schema, ``schema.name`` elsewhere."""
    return f"{schema}.{name}" if schema and schema != "public" else name


def split_top_level(tokens: tuple[Token, ...], separator: str = ",") -> list[tuple[Token, ...]]:
    """Split ``tokens`` at ``separator`` where it is outside parentheses."""
    parts: list[tuple[Token, ...]] = []
    current: list[Token] = []
    depth = 0
    for token in tokens:
        if token.text == separator and depth == 0:
            parts.append(tuple(current))
            current = []
            continue
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        current.append(token)
    if current:
        parts.append(tuple(current))
    return parts


def top_level_keywords(tokens: tuple[Token, ...]) -> list[str]:
    """The keywords of ``tokens`` that sit outside parentheses, in order."""
    words: list[str] = []
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token.text, 0)
        if depth == 0 and token.kind == "word":
            words.append(token.keyword)
    return words


def has_sequence(words: list[str], *sequence: str) -> bool:
    """Whether ``sequence`` appears contiguously in ``words``."""
    size = len(sequence)
    return any(tuple(words[i : i + size]) == sequence for i in range(len(words) - size + 1))
