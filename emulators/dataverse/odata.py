"""The OData pieces of the Web API the emulator understands: resource paths with keys, `$filter`, `$select`,
`$orderby`, and the `Prefer` header.

Sources: PAD/webapi/query/filter-rows.md (operators, doubled quotes in string literals, the unterminated-literal
error), PAD/use-alternate-key-reference-record.md (key forms), PAD/webapi/compose-http-requests-handle-errors.md
(Prefer values). String comparisons are case-insensitive because Dataverse's SQL collation is (inference from
Dataverse's default database collation; accent-insensitivity is not modelled).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulators.dataverse import errors
from emulators.dataverse.schema import GUID_RE, parse_datetime

Row = Mapping[str, Any]
Getter = Callable[[Row], Any]
Predicate = Callable[[Row], bool]

_SEGMENT_RE = re.compile(r"^([A-Za-z_$][\w.$]*)(?:\((.*)\))?$", re.DOTALL)
# ASP.NET's default requestPathInvalidCharacters; '+' is refused by IIS double-escaping rules.
DANGEROUS_PATH_CHARACTERS = "<>*%&:\\?"


@dataclass(slots=True)  # not frozen: built once per record on the bulk hot path, and frozen init is slower
class KeySpec:
    """`(guid)` -> record_id; `(col=value,...)` -> values (an id may also be named: accountid=<guid>)."""

    record_id: str | None = None
    values: Mapping[str, Any] | None = None
    text: str = ""


@dataclass(slots=True)
class Segment:
    name: str
    key: KeySpec | None = None
    has_parens: bool = False


def split_path(path: str) -> list[Segment]:
    """Segments of a resource path relative to the service root (already percent-decoded)."""
    parts = [p for p in path.split("/") if p != ""]
    return [parse_segment(p) for p in parts]


def parse_segment(text: str) -> Segment:
    match = _SEGMENT_RE.match(text)
    if not match:
        raise errors.resource_not_found(text)
    name, inner = match.group(1), match.group(2)
    if inner is None:
        return Segment(name)
    inner = inner.strip()
    if inner == "":
        return Segment(name, None, has_parens=True)
    return Segment(name, parse_key(inner), has_parens=True)


_KEY_PART = re.compile(r"\s*([A-Za-z_][\w.]*)\s*=\s*(?:'((?:[^']|'')*)'|([^,']*?))\s*(?:,|$)")


def parse_key(text: str) -> KeySpec:
    """`<guid>` or `name=value[,name=value]`: strings quoted with '' for a quote, numbers and guids bare."""
    if GUID_RE.match(text):
        return KeySpec(record_id=text.lower(), text=text)
    values: dict[str, Any] = {}
    if "''" not in text:  # fast path (bulk @odata.id): no escaped quotes, no commas inside quoted values
        for part in text.split(","):
            name, sep, raw = part.partition("=")
            raw = raw.strip()
            quotes = raw.count("'")
            if not sep or quotes not in (0, 2) or (quotes == 2 and not (raw[0] == raw[-1] == "'")):
                values.clear()
                break
            values[name.strip()] = raw[1:-1] if quotes else _literal(raw)
        else:
            return KeySpec(values=values, text=text)
    pos = 0
    while pos < len(text):
        match = _KEY_PART.match(text, pos)
        if match is None or match.end() == pos:
            if text.count("'") % 2:
                raise errors.query_syntax(f"There is an unterminated literal at position {len(text)} in '{text}'.")
            raise errors.query_syntax(f"Bad Request - Error in query syntax. Key '{text}' is not valid.")
        name, quoted, bare = match.groups()
        values[name] = quoted.replace("''", "'") if quoted is not None else _literal(bare.strip())
        pos = match.end()
    return KeySpec(values=values, text=text)


def _read_string(text: str, pos: int) -> tuple[str, int]:
    """A quoted literal starting at text[pos] == "'", with '' as an escaped quote; returns (value, next pos)."""
    out = []
    i = pos + 1
    while i < len(text):
        if text[i] == "'":
            if i + 1 < len(text) and text[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(text[i])
        i += 1
    raise errors.query_syntax(f"There is an unterminated literal at position {len(text)} in '{text}'.")


def _literal(token: str) -> Any:
    if token.isdecimal():  # not isdigit(): '²' is a digit int() refuses
        return int(token)
    lowered = token.lower()
    if lowered == "null":
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if GUID_RE.match(token):
        return token.lower()
    if re.fullmatch(r"[+-]?\d+", token):
        return int(token)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?[mMdDfF]?", token):
        return float(token.rstrip("mMdDfF"))
    date = parse_datetime(token) if re.match(r"^\d{4}-\d{2}-\d{2}", token) else None
    if date is not None:
        return date
    raise errors.query_syntax(f"Syntax error: '{token}' is not a valid literal.")


# --- $filter -------------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<comma>,)|(?P<str>')|"
    r"(?P<date>\d{4}-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?(?![\w-]))|"
    r"(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})|"
    r"(?P<num>[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?![\w]))|"
    r"(?P<word>@?[A-Za-z_][\w./]*))"
)
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith"}


@dataclass(frozen=True)
class _Token:
    kind: str
    value: Any
    pos: int


def _tokenize(text: str, aliases: Mapping[str, Any]) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        match = _TOKEN_RE.match(text, pos)
        if not match or match.lastgroup is None:
            raise errors.query_syntax(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup
        start = match.start(kind)
        if kind == "str":
            value, pos = _read_string(text, start)
            tokens.append(_Token("literal", value, start))
            continue
        raw = match.group(kind)
        pos = match.end()
        if kind == "date":
            tokens.append(_Token("literal", parse_datetime(raw), start))
        elif kind == "guid":
            tokens.append(_Token("literal", raw.lower(), start))
        elif kind == "num":
            tokens.append(_Token("literal", _literal(raw.rstrip("lL")), start))
        elif kind == "word" and raw.startswith("@"):
            if raw not in aliases:
                raise errors.query_syntax(f"The parameter alias '{raw}' is not defined.")
            tokens.append(_Token("literal", aliases[raw], start))
        elif kind == "word" and raw.lower() in ("null", "true", "false"):
            tokens.append(_Token("literal", _literal(raw), start))
        else:
            tokens.append(_Token(kind, raw, start))
    return tokens


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _fold(left), _fold(right)
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) or b(row)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda row: a(row) and b(row)


class _FilterParser:
    def __init__(self, text: str, resolve: Callable[[str], Getter], aliases: Mapping[str, Any]) -> None:
        self.text = text
        self.tokens = _tokenize(text, aliases)
        self.pos = 0
        self.resolve = resolve

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.pos != len(self.tokens):
            token = self.tokens[self.pos]
            raise errors.query_syntax(f"Syntax error at position {token.pos} in '{self.text}'.")
        return predicate

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> _Token:
        token = self._peek()
        if token is None:
            raise errors.query_syntax(f"Syntax error at position {len(self.text)} in '{self.text}'.")
        self.pos += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "word" and str(token.value).lower() == word:
            self.pos += 1
            return True
        return False

    def _or(self) -> Predicate:
        left = self._and()
        while self._keyword("or"):
            right = self._and()
            left = _either(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._unary()
        while self._keyword("and"):
            right = self._unary()
            left = _both(left, right)
        return left

    def _unary(self) -> Predicate:
        if self._keyword("not"):
            inner = self._unary()
            return lambda row: not inner(row)
        token = self._next()
        if token.kind == "open":
            inner = self._or()
            if self._next().kind != "close":
                raise errors.query_syntax(f"')' or operator expected at position {token.pos} in '{self.text}'.")
            return inner
        if token.kind == "word" and str(token.value).lower() in _FUNCTIONS:
            return self._function(str(token.value).lower(), token)
        if token.kind != "word":
            raise errors.query_syntax(f"Syntax error at position {token.pos} in '{self.text}'.")
        getter = self.resolve(str(token.value))
        op_token = self._next()
        op = str(op_token.value).lower()
        if op_token.kind != "word" or op not in _COMPARISONS:
            raise errors.query_syntax(f"Syntax error at position {op_token.pos} in '{self.text}'.")
        literal = self._next()
        if literal.kind != "literal":
            raise errors.query_syntax(f"Syntax error at position {literal.pos} in '{self.text}'.")
        value = literal.value
        return lambda row: _compare(op, getter(row), value)

    def _function(self, name: str, token: _Token) -> Predicate:
        if self._next().kind != "open":
            raise errors.query_syntax(f"'(' expected at position {token.pos} in '{self.text}'.")
        prop = self._next()
        if prop.kind != "word" or self._next().kind != "comma":
            raise errors.query_syntax(f"Syntax error at position {prop.pos} in '{self.text}'.")
        getter = self.resolve(str(prop.value))
        literal = self._next()
        if literal.kind != "literal" or not isinstance(literal.value, str) or self._next().kind != "close":
            raise errors.query_syntax(f"Syntax error at position {literal.pos} in '{self.text}'.")
        needle = literal.value.casefold()
        test = {"contains": str.__contains__, "startswith": str.startswith, "endswith": str.endswith}[name]

        def predicate(row: Row) -> bool:
            value = getter(row)
            return isinstance(value, str) and bool(test(value.casefold(), needle))

        return predicate


def parse_filter(text: str, resolve: Callable[[str], Getter], aliases: Mapping[str, Any] | None = None) -> Predicate:
    """Compile `$filter` text; `resolve(name)` returns a getter or raises the unknown-property error."""
    return _FilterParser(text, resolve, aliases or {}).parse()


def parse_aliases(query: Mapping[str, str]) -> dict[str, Any]:
    """Parameter aliases such as `@message='CreateMultiple'` (used by the documented sdkmessagefilters probe)."""
    aliases: dict[str, Any] = {}
    for name, raw in query.items():
        if name.startswith("@"):
            text = raw.strip()
            aliases[name] = _read_string(text, 0)[0] if text.startswith("'") else _literal(text)
    return aliases


def parse_select(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """`name asc,createdon desc` -> [(name, descending)]."""
    order = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise errors.query_syntax(f"Syntax error in '$orderby={text}'.")
        order.append((words[0], len(words) == 2 and words[1].lower() == "desc"))
    return order


# --- Prefer --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    return_representation: bool = False
    include_annotations: str | None = None
    max_page_size: int | None = None
    track_changes: bool = False
    continue_on_error: bool = False

    def wants_annotation(self, name: str) -> bool:
        """Whether `name` (e.g. OData.Community.Display.V1.FormattedValue) matches the requested patterns."""
        if not self.include_annotations:
            return False
        for item in self.include_annotations.split(","):
            pattern = item.strip().strip('"')
            if pattern in ("*", name) or (pattern.endswith("*") and name.startswith(pattern[:-1])):
                return True
        return False


def parse_prefer(values: list[str]) -> Preferences:
    """All `Prefer` header values; preferences are comma separated (RFC 7240), quoted values may contain commas."""
    found: dict[str, Any] = {}
    for header in values:
        for item in _split_preferences(header):
            name, _, value = item.partition("=")
            name = name.strip().lower()
            value = value.strip()
            if name == "return" and value.lower() == "representation":
                found["return_representation"] = True
            elif name == "odata.include-annotations":
                found["include_annotations"] = value.strip('"')
            elif name == "odata.maxpagesize" and value.isdecimal():
                found["max_page_size"] = int(value)
            elif name == "odata.track-changes":
                found["track_changes"] = True
            elif name == "odata.continue-on-error":
                found["continue_on_error"] = True
    return Preferences(**found)


def _split_preferences(header: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [i.strip() for i in items if i.strip()]
