"""The filter grammar of ``search_runs``, compiled to parametrized SQL over the store's tables.

A filter is MLflow's search syntax, plus ``OR``, parentheses and ``IS [NOT] NULL``::

    metrics.acc > 0.9 and params.model = 'tree'
    (tags.team = 'vision' or tags.team ILIKE 'audio%') and attributes.status != 'FAILED'
    metrics.`f1 score` >= 0.8 and tags.mlflow.source.type IN ('LOCAL', 'NOTEBOOK')
    attributes.start_time >= 1700000000000 and params.lr IS NOT NULL

Grammar (keywords are case-insensitive; ``AND`` binds tighter than ``OR``)::

    filter      := [ or_expr ]
    or_expr     := and_expr ( OR and_expr )*
    and_expr    := primary ( AND primary )*
    primary     := '(' or_expr ')' | comparison
    comparison  := name op value
                 | name [NOT] IN '(' value ( ',' value )* ')'
                 | name [NOT] LIKE string | name [NOT] ILIKE string
                 | name IS [NOT] NULL
    op          := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    name        := prefix '.' key | attribute
    prefix      := metrics | metric | params | param | parameters | tags | tag
                 | attributes | attribute | attr | run
    key         := unquoted | `backquoted` | "double-quoted"
    value       := number | string

* An unquoted key is everything up to the operator made of letters, digits and ``_ . - / :``,
  so ``tags.mlflow.source.type`` is the tag ``mlflow.source.type``. Quote a key that holds
  anything else: ``metrics.`f1 score` ``, ``tags."my key"``. Inside a quoted key the quote
  character is written twice.
* A string is in single or double quotes; the quote inside it is written twice (``'it''s'``)
  or escaped with a backslash (``'it\\'s'``); ``\\\\`` is one backslash.
* A number is an integer or a decimal, optionally signed, optionally with an exponent
  (``-1.5``, ``3e-4``), or ``inf`` / ``-inf``. ``nan`` is refused: a NaN metric is stored as
  NULL and matches no comparison.

What each kind of name accepts:

* ``metrics.<key>``: ``= != < <= > >=`` against a number; ``IS [NOT] NULL``.
* ``params.<key>``, ``tags.<key>``: ``= != < <= > >=`` (string order), ``[NOT] LIKE``
  (case-sensitive; ``%`` any run of characters, ``_`` one character), ``[NOT] ILIKE``
  (case-insensitive for ASCII letters), ``[NOT] IN (...)``, all against strings;
  ``IS [NOT] NULL``.
* ``attributes.<name>`` (the prefix may be left out): run_id, run_name, status, user_id,
  artifact_uri, parent_run_id, host compare with strings (``= != [NOT] LIKE [NOT] ILIKE
  [NOT] IN``); start_time, end_time (milliseconds since the epoch) and experiment_id compare
  with numbers (``= != < <= > >= [NOT] IN``); every attribute accepts ``IS [NOT] NULL``.
  Status values are checked against RUNNING, FINISHED, FAILED, KILLED, SCHEDULED.
  ``run_uuid`` and ``created`` are accepted as MLflow's names for run_id and start_time.

A run that lacks a metric, param or tag matches no comparison on it, ``!=`` and ``NOT IN``
included; ``IS NULL`` is the way to ask for runs lacking a key. A NaN metric is present (not
``IS NULL``) but matches no comparison.

``order_by`` is a list of ``name [ASC|DESC]`` (ascending by default), names as above. Runs
lacking the ordered key come last in both directions. Without ``order_by`` runs come newest
first (start_time DESC); run_id always breaks ties so that paging is stable.

This module only parses: :func:`parse_filter` and :func:`parse_order_by` give a syntax tree
(:class:`Comparison`, :class:`Junction` over :class:`Name`) and :mod:`store.sql.search` turns
it into SQL per dialect. The names a filter may use come from a :class:`Vocabulary`: runs use
:data:`RUNS`; the registry passes its own, so both share one grammar. Malformed input raises
:class:`SearchSyntaxError` whose message names the 0-based character position and the
offending token.

Limits (a filter past one raises :class:`SearchSyntaxError` naming the limit and how to narrow
the filter, rather than reaching the database): at most ``MAX_FILTER_LENGTH`` characters,
``MAX_COMPARISONS`` comparisons, ``MAX_IN_VALUES`` values in all ``IN`` lists together,
``MAX_DEPTH`` levels of parentheses and ``MAX_ORDER_BY`` order_by clauses. Within them every
filter compiles: :mod:`store.sql.search` shapes long chains to stay within SQLite's limits on
expression depth and parser stack.

About 700 lines, 70 of them this reference: one grammar (tokens, AST, vocabulary, parser) whose
parts change together, and none of them any use alone.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from store import system_tags
from store.errors import SearchSyntaxError

STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED")
LIFECYCLE_STAGES = ("active", "deleted")

_PREFIXES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "parameters": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
    "datasets": "datasets",
    "dataset": "datasets",
}
# datasets.<key>: what a run's dataset inputs are matched on (MLflow's DATASET_ATTRIBUTES)
DATASET_KEYS = ("name", "digest", "context")

# attribute name -> (column of runs, value type)
_ATTRIBUTES = {
    "run_id": ("run_id", "string"),
    "run_name": ("run_name", "string"),
    "status": ("status", "status"),
    "start_time": ("start_time", "number"),
    "end_time": ("end_time", "number"),
    "user_id": ("user_id", "string"),
    "artifact_uri": ("artifact_uri", "string"),
    "experiment_id": ("experiment_id", "number"),
    "parent_run_id": ("parent_run_id", "string"),
    "host": ("host", "string"),
}
_ATTRIBUTE_ALIASES = {"run_uuid": "run_id", "created": "start_time"}

_COMPARISONS = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null"}
MAX_DEPTH = 64
MAX_FILTER_LENGTH = 500_000
MAX_COMPARISONS = 1000
MAX_IN_VALUES = 10_000
MAX_ORDER_BY = 16  # one LEFT JOIN each; SQLite joins at most 64 tables
_NARROW = (
    "narrow the filter: put the values of one key in a single IN (...) list instead of OR'ed "
    "comparisons, filter on fewer keys, or split the search into several searches"
)
_INT64_MAX = 2**63 - 1

_NUMBER = re.compile(r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|inf(?:inity)?)", re.IGNORECASE)
_INTEGER = re.compile(r"[-+]?\d+")


# ----------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # ident word string number op ( ) , error end
    text: str  # the source text of the token ("" at the end)
    pos: int
    value: Any = None


def _is_key_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_.-/:"


def _read_quoted(text: str, start: int, backslash: bool) -> tuple[str, int] | None:
    """Read a quoted run starting at the quote; return (content, end) or None if unterminated."""
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if backslash and ch == "\\" and i + 1 < len(text) and text[i + 1] in "'\"\\":
            out.append(text[i + 1])
            i += 2
        elif ch == quote:
            if i + 1 < len(text) and text[i + 1] == quote:
                out.append(quote)
                i += 2
            else:
                return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    return None


def _tokenize(text: str) -> list[_Token]:
    """Split into tokens. A lexical error becomes a final "error" token, so that the parser
    reports whichever problem comes first in the text."""
    tokens: list[_Token] = []
    i, n = 0, len(text)

    def error(pos: int, token: str, message: str) -> list[_Token]:
        tokens.append(_Token("error", token, pos, message))
        return tokens

    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append(_Token(ch, ch, i))
            i += 1
        elif ch in "'\"":
            read = _read_quoted(text, i, backslash=True)
            if read is None:
                return error(i, text[i : i + 20], "unterminated string: add the closing quote")
            value, end = read
            tokens.append(_Token("string", text[i:end], i, value))
            i = end
        elif ch in "<>=!":
            op = text[i : i + 2] if text[i : i + 2] in _COMPARISONS else ch
            if op not in _COMPARISONS:
                return error(i, op, "expected an operator such as = != < <= > >=")
            tokens.append(_Token("op", op, i, op))
            i += len(op)
        elif ch == ";":
            return error(i, ch, "';' is not allowed: a filter is one expression, not statements")
        elif text.startswith("--", i):
            return error(i, "--", "'--' is not allowed: a filter has no comments")
        elif (m := _NUMBER.match(text, i)) is not None and not ch.isalpha():
            token, i = _read_number(text, i, m.end())
            tokens.append(token)
            if token.kind == "error":
                return tokens
        elif ch.isalpha() or ch == "_":
            token, i = _read_name(text, i)
            tokens.append(token)
            if token.kind == "error":
                return tokens
        elif ch == "`":
            return error(i, ch, "backquotes quote a key after its prefix, as in metrics.`f1 score`")
        else:
            return error(i, ch, "unexpected character")
    tokens.append(_Token("end", "", n))
    return tokens


def _read_number(text: str, i: int, end: int) -> tuple[_Token, int]:
    """The number token at ``text[i:end]`` and where it ends, or an "error" token."""
    n = len(text)
    if end < n and (text[end].isalnum() or text[end] in "_."):
        bad = text[i:end]
        while end < n and _is_key_char(text[end]):
            end += 1
        return _Token("error", text[i:end], i, f"malformed number after {bad!r}"), end
    return _Token("number", text[i:end], i, _number_value(text[i:end])), end


def _read_name(text: str, start: int) -> tuple[_Token, int]:
    """The word (``and``, ``IN``) or prefixed key (``metrics.acc``, ``params.`a b```) at
    ``start`` and where it ends, or an "error" token."""
    i, n = start, len(text)
    while i < n and (text[i].isalnum() or text[i] == "_"):
        i += 1
    word = text[start:i]
    if not (i < n and text[i] == "."):
        return _Token("word", word, start, word.lower()), i
    i += 1
    if i < n and text[i] in '`"':
        read = _read_quoted(text, i, backslash=False)
        if read is None:
            return _Token("error", text[i : i + 20], i, "unterminated quoted key"), i
        key, i = read
        if not key:
            return _Token("error", text[start:i], start, "empty key"), i
    else:
        key_start = i
        while i < n and _is_key_char(text[i]) and not text.startswith("--", i):
            i += 1
        key = text[key_start:i]
        if not key:
            return _Token("error", text[start:i], start, f"expected a key after '{word}.'"), i
    return _Token("ident", text[start:i], start, (word, key)), i


def _number_value(text: str) -> int | float:
    if _INTEGER.fullmatch(text):
        value = int(text)
        # SQLite integers are 64-bit; a larger literal still compares correctly as a float.
        return value if abs(value) <= _INT64_MAX else float(value)
    return float(text)


# ----------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Name:
    """A name in a filter: a keyed value (metrics, params, tags) or an attribute column."""

    kind: str  # metrics params tags attributes
    key: str  # for attributes: the column
    type: str  # number or string, or a checked string type of the vocabulary (status, stage)


@dataclass(frozen=True)
class Comparison:
    name: Name
    op: str  # = != < <= > >= IN, NOT IN, LIKE, NOT LIKE, ILIKE, NOT ILIKE, IS NULL, IS NOT NULL
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Junction:
    op: str  # AND or OR
    items: tuple[Node, ...]


Node = Comparison | Junction


def _check_status(value: str) -> str:
    status = value.upper()
    if status not in STATUSES:
        raise ValueError(f"unknown status {value!r}; use one of {', '.join(STATUSES)}")
    return status


@dataclass(frozen=True)
class Vocabulary:
    """The names one kind of search accepts.

    :param prefixes: ``prefix`` of ``prefix.key`` -> metrics, params, tags or attributes.
    :param attributes: attribute name -> (column, type); type is number, string, or a key of
        ``checks``.
    :param checks: type -> a function giving the canonical value or raising ValueError whose
        message is shown (status names, registry stages).
    :param example: what the error for a missing name suggests.
    :param prefix_hint: what the error for an unknown prefix suggests.
    :param unknown_attribute: the error for an unknown attribute, given the name as written
        and whether it came with a prefix.
    """

    prefixes: Mapping[str, str]
    attributes: Mapping[str, tuple[str, str]]
    unknown_attribute: Callable[[str, bool], str]
    aliases: Mapping[str, str] = field(default_factory=dict)
    checks: Mapping[str, Callable[[str], str]] = field(default_factory=dict)
    example: str = "a comparison such as metrics.acc > 0.9"
    prefix_hint: str = "metrics., params., tags. or attributes."
    # canonical attribute names also accept spaces for underscores ("start time")
    spaces_as_underscores: bool = True
    # kind -> {old key: new key}: keys renamed since, still accepted with a DeprecationWarning
    renamed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # keys of datasets.<key> (runs only): a run matches when one of its dataset inputs does
    dataset_keys: tuple[str, ...] = ()


def _unknown_run_attribute(name: str, prefixed: bool) -> str:
    hint = "" if prefixed else "; or use metrics., params. or tags."
    return f"unknown attribute '{name}'; allowed: {', '.join(sorted(_ATTRIBUTES))}{hint}"


# The names of search_runs.
RUNS = Vocabulary(
    prefixes=_PREFIXES,
    attributes=_ATTRIBUTES,
    unknown_attribute=_unknown_run_attribute,
    aliases=_ATTRIBUTE_ALIASES,
    checks={"status": _check_status},
    renamed={"tags": system_tags.RENAMED},
    prefix_hint="metrics., params., tags., attributes. or datasets.",
    dataset_keys=DATASET_KEYS,
)


def _caller_level() -> int:
    """The stacklevel of the first frame outside autolog and the store (the user's call)."""
    import os
    import sys

    ours = tuple(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep + name + os.sep
        for name in ("store", "autolog")
    )
    frame: Any = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(ours):
        frame, level = frame.f_back, level + 1
    return level


class Parser:
    """Recursive descent over the tokens of one filter or order_by clause."""

    def __init__(self, text: str, what: str = "filter", vocabulary: Vocabulary = RUNS):
        self.text = text
        self.what = what
        self.vocabulary = vocabulary
        self.tokens = _tokenize(text)
        self.i = 0
        self.comparisons = 0
        self.in_values = 0

    # -- helpers

    def fail(self, tok: _Token, message: str) -> SearchSyntaxError:
        if tok.kind == "end":
            where = f"at position {tok.pos} (end of input)"
            token = None
        else:
            where = f"at position {tok.pos} near {tok.text!r}"
            token = tok.text
        return SearchSyntaxError(f"Invalid {self.what} {where}: {message}", tok.pos, token)

    def peek(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind == "error":
            raise self.fail(tok, tok.value)
        return tok

    def take(self) -> _Token:
        tok = self.peek()
        self.i += 1
        return tok

    def at_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.value in words

    # -- filter

    def parse_filter(self) -> Node | None:
        if self.peek().kind == "end":
            return None
        node = self.or_expr(0)
        tok = self.peek()
        if tok.kind == ")":
            raise self.fail(tok, "unbalanced ')': no '(' is open here")
        if tok.kind != "end":
            raise self.fail(tok, "expected AND, OR or the end of the filter after a comparison")
        return node

    def or_expr(self, depth: int) -> Node:
        items = [self.and_expr(depth)]
        while self.at_word("or"):
            self.take()
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else Junction("OR", tuple(items))

    def and_expr(self, depth: int) -> Node:
        items = [self.primary(depth)]
        while self.at_word("and"):
            self.take()
            items.append(self.primary(depth))
        return items[0] if len(items) == 1 else Junction("AND", tuple(items))

    def primary(self, depth: int) -> Node:
        tok = self.peek()
        if tok.kind != "(":
            return self.comparison()
        if depth >= MAX_DEPTH:
            raise self.fail(
                tok,
                f"parentheses nested deeper than {MAX_DEPTH} levels (the limit); remove "
                "redundant parentheses: AND binds tighter than OR",
            )
        self.take()
        if self.peek().kind == ")":
            raise self.fail(self.peek(), "empty parentheses: expected a comparison inside")
        node = self.or_expr(depth + 1)
        close = self.peek()
        if close.kind != ")":
            raise self.fail(close, f"expected ')' to close the '(' at position {tok.pos}")
        self.take()
        return node

    def name(self) -> tuple[_Token, Name]:
        tok = self.take()
        example = self.vocabulary.example
        if tok.kind == "ident":
            prefix, key = tok.value
            kind = self.vocabulary.prefixes.get(prefix.lower())
            if kind is None:
                raise self.fail(
                    tok, f"unknown prefix '{prefix}.': use {self.vocabulary.prefix_hint}"
                )
            if kind == "attributes":
                return tok, self.attribute(tok, key)
            if kind == "datasets":
                return tok, self.dataset_key(tok, key)
            key = self.current_key(kind, key)
            return tok, Name(kind, key, "number" if kind == "metrics" else "string")
        if tok.kind == "word" and tok.value not in _KEYWORDS:
            return tok, self.attribute(tok, tok.text)
        if tok.kind == "end":
            raise self.fail(tok, f"expected {example}")
        if tok.kind in ("string", "number"):
            raise self.fail(tok, f"expected {example}; a {tok.kind} can only follow an operator")
        raise self.fail(tok, f"expected {example}")

    def current_key(self, kind: str, key: str) -> str:
        new = self.vocabulary.renamed.get(kind, {}).get(key)
        if new is None:
            return key
        warnings.warn(
            f"{kind}.{key} in a {self.what} is the old name of {kind}.{new} (stores migrate to "
            f"MLflow's names); write {kind}.{new}",
            DeprecationWarning,
            stacklevel=_caller_level(),
        )
        return new

    def attribute(self, tok: _Token, name: str) -> Name:
        vocabulary = self.vocabulary
        canonical = name.strip().lower()
        if vocabulary.spaces_as_underscores:
            canonical = canonical.replace(" ", "_")
        canonical = vocabulary.aliases.get(canonical, canonical)
        if canonical not in vocabulary.attributes:
            raise self.fail(tok, vocabulary.unknown_attribute(name, tok.kind == "ident"))
        column, kind = vocabulary.attributes[canonical]
        return Name("attributes", column, kind)

    def dataset_key(self, tok: _Token, key: str) -> Name:
        keys = self.vocabulary.dataset_keys
        if key.lower() not in keys:
            if not keys:
                raise self.fail(
                    tok, f"unknown prefix 'datasets.': use {self.vocabulary.prefix_hint}"
                )
            raise self.fail(
                tok,
                f"unknown dataset key '{key}'; allowed: {', '.join(f'datasets.{k}' for k in keys)}",
            )
        return Name("datasets", key.lower(), "string")

    def comparison(self) -> Comparison:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.fail(
                self.peek(), f"more than {MAX_COMPARISONS} comparisons (the limit); {_NARROW}"
            )
        name_tok, name = self.name()
        tok = self.take()
        label = name_tok.text
        if tok.kind == "op":
            op = _COMPARISONS[tok.value]
            self.check_op(tok, name, label, op)
            return Comparison(name, op, (self.value(tok, name, label, op),))
        negated = False
        if tok.kind == "word" and tok.value == "not":
            negated = True
            tok = self.take()
            if not (tok.kind == "word" and tok.value in ("in", "like", "ilike")):
                raise self.fail(tok, "expected IN, LIKE or ILIKE after NOT")
        if tok.kind == "word" and tok.value == "in":
            op = "NOT IN" if negated else "IN"
            self.check_op(tok, name, label, op)
            return Comparison(name, op, self.value_list(tok, name, label, op))
        if tok.kind == "word" and tok.value in ("like", "ilike"):
            op = ("NOT " if negated else "") + tok.value.upper()
            self.check_op(tok, name, label, op)
            return Comparison(name, op, (self.value(tok, name, label, op),))
        if tok.kind == "word" and tok.value == "is":
            op = "IS NULL"
            if self.at_word("not"):
                self.take()
                op = "IS NOT NULL"
            null = self.take()
            if not (null.kind == "word" and null.value == "null"):
                raise self.fail(null, f"expected NULL after {op[:-5]}")
            return Comparison(name, op)
        raise self.fail(
            tok,
            f"expected an operator (= != < <= > >= LIKE ILIKE IN NOT IN IS) after {label!r}",
        )

    def check_op(self, tok: _Token, name: Name, label: str, op: str) -> None:
        allowed: tuple[str, ...]
        if name.kind == "datasets":  # MLflow's VALID_DATASET_COMPARATORS
            allowed = ("=", "!=", "IN", "NOT IN", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE")
        elif name.type == "number":
            allowed = ("=", "!=", "<", "<=", ">", ">=")
            if name.kind == "attributes":
                allowed += ("IN", "NOT IN")
        elif name.kind == "attributes":
            allowed = ("=", "!=", "IN", "NOT IN", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE")
        else:
            allowed = ("=", "!=", "<", "<=", ">", ">=")
            allowed += ("IN", "NOT IN", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE")
        if op not in allowed:
            ops = " ".join(allowed) + " IS NULL"
            raise self.fail(tok, f"{label!r} does not support {op}; it supports {ops}")

    def value(self, after: _Token, name: Name, label: str, op: str) -> Any:
        tok = self.take()
        if tok.kind == "word" and tok.value in ("inf", "infinity"):
            tok = _Token("number", tok.text, tok.pos, float("inf"))
        if tok.kind == "word" and tok.value == "nan":
            raise self.fail(tok, "NaN is not a comparable value; a NaN metric matches nothing")
        if tok.kind not in ("string", "number"):
            raise self.fail(tok, f"expected a value after {after.text!r}")
        if name.type == "number":
            if tok.kind != "number":
                what = "milliseconds since the epoch" if name.key.endswith("_time") else "a number"
                raise self.fail(
                    tok, f"{label!r} compares with {what}, not a string: remove the quotes"
                )
            return float(tok.value) if name.kind == "metrics" else tok.value
        if tok.kind != "string":
            raise self.fail(
                tok, f"{label!r} compares with strings: quote the value, as in '{tok.text}'"
            )
        check = self.vocabulary.checks.get(name.type)
        if check is not None and "LIKE" not in op:
            try:
                return check(tok.value)
            except ValueError as e:
                raise self.fail(tok, str(e)) from None
        return tok.value

    def value_list(self, after: _Token, name: Name, label: str, op: str) -> tuple[Any, ...]:
        opening = self.take()
        if opening.kind != "(":
            raise self.fail(opening, f"expected '(' after {op}, as in IN ('a', 'b')")
        values = [self.value(opening, name, label, op)]
        while True:
            tok = self.take()
            if tok.kind == ")":
                self.in_values += len(values)
                return tuple(values)
            if tok.kind != ",":
                raise self.fail(tok, f"expected ',' or ')' in the {op} list")
            if self.in_values + len(values) >= MAX_IN_VALUES:
                raise self.fail(
                    self.peek(),
                    f"more than {MAX_IN_VALUES} values in IN lists (the limit, all lists "
                    "together); split the search into several searches with shorter lists, or "
                    "match the values by a pattern (LIKE) or a shared tag",
                )
            values.append(self.value(tok, name, label, op))

    # -- order_by

    def parse_order(self) -> tuple[str, str, bool]:
        tok = self.peek()
        if tok.kind == "end":
            raise self.fail(tok, "empty clause: expected a name such as metrics.acc")
        if tok.kind not in ("ident", "word"):
            raise self.fail(tok, "expected a name such as metrics.acc or start_time")
        name_tok, name = self.name()
        if name.kind == "datasets":
            raise self.fail(name_tok, "runs cannot be ordered by datasets.*; filter on them")
        ascending = True
        if self.at_word("asc", "desc"):
            ascending = self.take().value == "asc"
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(tok, "expected ASC, DESC or the end of the clause")
        return name.kind, name.key, ascending


# ----------------------------------------------------------------------------- entry points


def _check_length(text: str, what: str) -> None:
    if isinstance(text, str) and len(text) > MAX_FILTER_LENGTH:
        raise SearchSyntaxError(
            f"Invalid {what}: {len(text):,} characters, more than {MAX_FILTER_LENGTH:,} (the "
            f"limit); {_NARROW}",
            MAX_FILTER_LENGTH,
            None,
        )


def parse_filter(
    filter_string: str, vocabulary: Vocabulary = RUNS, what: str = "filter"
) -> Node | None:
    """The syntax tree of a filter; None for an empty filter.

    :raises SearchSyntaxError: the filter is malformed or past a limit; the message names the
        position (or the limit and how to narrow the filter).
    """
    _check_length(filter_string, what)
    return Parser(filter_string, what, vocabulary).parse_filter()


def parse_order_by(
    order_by: list[str] | str | None, vocabulary: Vocabulary = RUNS
) -> list[tuple[str, str, bool]]:
    """Parse order_by clauses into ``[(kind, key, ascending)]``.

    :param order_by: clauses such as ``"metrics.acc DESC"``, ``"params.model"``,
        ``"start_time ASC"``; None or [] for none.
    :return: kind is metrics, params, tags or attributes; for attributes key is the column.
    :raises SearchSyntaxError: a clause is malformed; the message names the clause and position.
    """
    if order_by is None:
        return []
    if isinstance(order_by, str):
        order_by = [order_by]
    if len(order_by) > MAX_ORDER_BY:
        raise SearchSyntaxError(
            f"Invalid order_by: {len(order_by)} clauses, more than {MAX_ORDER_BY} (the limit); "
            "order by fewer keys",
            None,
            None,
        )
    parsed = []
    for clause in order_by:
        if not isinstance(clause, str):
            raise SearchSyntaxError(f"Invalid order_by {clause!r}: expected a string", 0, None)
        _check_length(clause, "order_by clause")
        parsed.append(Parser(clause, f"order_by {clause!r}", vocabulary).parse_order())
    return parsed
