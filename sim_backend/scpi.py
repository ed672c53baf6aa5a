"""A small SCPI message parser with a precompiled command table.

Why a table and a cache: the simulator must answer ~20,000 messages/s, so a header is resolved
against the table once and then found in a dict on every later message.

Keithley syntax (scpi.md §1, §8.7): case-insensitive; each node has a short form (the upper-case
letters of the pattern) and a long form; ``[...]`` nodes are optional; a node written ``NAME#``
takes a numeric suffix (``CHANnel#`` matches ``CHAN1``, a missing suffix means 1); a node without
``#`` accepts the suffix ``1`` (``SENS1``). ``;`` separates commands; after ``;`` a leading ``:``
returns to the root, otherwise the header continues at the previous command's level; common
commands (``*CLS``, also written ``:*CLS``) leave the path alone. Parameters are comma separated;
single- or double-quoted strings may contain ``,`` and ``;``.

SRS syntax (SR830/SR860): a mnemonic of letters, optional ``?``, optional space, comma-separated
arguments (``SLVL1.000``, ``OUTP?1``, ``SNAP? X, Y``, ``AUXV?1;``).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Entry", "CommandTable", "ScpiError", "split_params", "split_commands",
           "parse_srs", "unquote"]

_NODE = re.compile(r"^([A-Z*]*)([a-z]*)(#?)$")
_SRS = re.compile(r"^\s*([*A-Za-z]+)(\?)?(\s*)(.*?)\s*$", re.S)
_TRAILING_DIGITS = re.compile(r"^(.*?)(\d+)$")


class ScpiError(Exception):
    """A command failed: carries the SCPI error code (−113, −222, …) and its text."""

    def __init__(self, code: int, text: str):
        super().__init__(f"{code},\"{text}\"")
        self.code = code
        self.text = text


@dataclass(slots=True)
class Entry:
    """What a resolved header does: ``set(inst, params, sfx)`` and/or ``query(inst, params, sfx) -> str``."""

    set: Callable[[Any, list[str], tuple], None] | None = None
    query: Callable[[Any, list[str], tuple], str] | None = None
    pattern: str = ""


@dataclass(slots=True)
class _Node:
    short: str
    long: str
    optional: bool
    numbered: bool


def _parse_pattern(pattern: str) -> list[_Node]:
    """``[:SOURce]:CURRent[:LEVel]`` → nodes; brackets may enclose one node each."""
    nodes: list[_Node] = []
    p = pattern.strip()
    i = 0
    while i < len(p):
        optional = False
        if p[i] == "[":
            j = p.index("]", i)
            body, i, optional = p[i + 1:j], j + 1, True
        else:
            j = i + 1
            while j < len(p) and p[j] not in ":[":
                j += 1
            body, i = p[i:j], j
        body = body.lstrip(":")
        if not body:
            continue
        m = _NODE.match(body)
        if not m:
            raise ValueError(f"bad SCPI pattern node {body!r} in {pattern!r}")
        short = m.group(1)
        nodes.append(_Node(short, (m.group(1) + m.group(2)).upper(), optional, bool(m.group(3))))
    return nodes


class CommandTable:
    """Trie of header keys built from patterns, plus a cache of resolved token tuples."""

    def __init__(self) -> None:
        self._root: dict = {}
        self._mnem: dict[str, str] = {}
        self._tok: dict[str, tuple[str, int | None]] = {}
        self._cache: dict[tuple, tuple[Entry, tuple] | None] = {}

    def add(self, pattern: str, set: Callable | None = None, query: Callable | None = None) -> None:
        nodes = _parse_pattern(pattern)
        if any(n.optional and n.numbered for n in nodes):
            raise ValueError(f"{pattern!r}: an optional node cannot take a numeric suffix")
        for n in nodes:
            self._mnem[n.long] = n.short
            self._mnem[n.short] = n.short
        variants: list[list[str]] = [[]]
        for n in nodes:
            key = n.short + ("#" if n.numbered else "")
            variants = [v + [key] for v in variants] + (variants if n.optional else [])
        for v in variants:
            d = self._root
            for key in v:
                d = d.setdefault(key, {})
            e = d.get(None)
            if e is None:
                e = d[None] = Entry(pattern=pattern)
            if set is not None:
                e.set = set
            if query is not None:
                e.query = query
        self._cache.clear()

    def _token(self, tok: str) -> tuple[str, int | None]:
        r = self._tok.get(tok)
        if r is None:
            m = _TRAILING_DIGITS.match(tok)
            r = (m.group(1), int(m.group(2))) if (m and m.group(1)) else (tok, None)
            self._tok[tok] = r
        return r

    def _walk(self, d: dict, tokens: tuple, i: int, sfx: tuple):
        if i == len(tokens):
            e = d.get(None)
            return (e, sfx) if e is not None else None
        base, num = self._token(tokens[i])
        short = self._mnem.get(base)
        if short is None:
            short = self._mnem.get(tokens[i])  # a mnemonic that really ends in digits
            if short is None:
                return None
            base, num = tokens[i], None
        if num is None:
            cands = ((short, None), (short + "#", 1))
        elif num == 1:
            cands = ((short + "#", 1), (short, None))
        else:
            cands = ((short + "#", num),)
        for key, n in cands:
            child = d.get(key)
            if child is not None:
                r = self._walk(child, tokens, i + 1, sfx if n is None else sfx + (n,))
                if r is not None:
                    return r
        return None

    def resolve(self, tokens: tuple[str, ...]) -> tuple[Entry, tuple] | None:
        """Upper-case header tokens → (entry, numeric suffixes), or None for an undefined header."""
        try:
            return self._cache[tokens]
        except KeyError:
            r = self._walk(self._root, tokens, 0, ())
            self._cache[tokens] = r
            return r


def _split_quoted(s: str, sep: str) -> list[str]:
    out, cur, quote = [], [], None
    for ch in s:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            cur.append(ch)
        elif ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def split_commands(message: str) -> list[str]:
    """Split a program message at ``;`` outside quotes."""
    if '"' in message or "'" in message:
        return _split_quoted(message, ";")
    return message.split(";")


def split_params(s: str) -> list[str]:
    """Comma-separated parameters, stripped; quotes are kept (see :func:`unquote`)."""
    if not s:
        return []
    parts = _split_quoted(s, ",") if ('"' in s or "'" in s) else s.split(",")
    return [p.strip() for p in parts]


def unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        return s[1:-1]
    return s


@dataclass(slots=True)
class Parsed:
    """One command of a program message after header resolution."""

    entry: Entry | None
    query: bool
    params: tuple[str, ...]
    sfx: tuple
    header: str = ""


@dataclass
class KeithleyParser:
    """Splits a program message into resolved commands, applying the SCPI path rules."""

    table: CommandTable
    _msg_cache: dict = field(default_factory=dict)

    def parse(self, message: str) -> list[Parsed]:
        """Parsed commands of a program message; cached per message text (parameters are tuples,
        so handlers never see a shared mutable)."""
        r = self._msg_cache.get(message)
        if r is None:
            if len(self._msg_cache) > 20_000:
                self._msg_cache.clear()
            r = self._msg_cache[message] = self._parse(message)
        return r

    def _parse(self, message: str) -> list[Parsed]:
        out: list[Parsed] = []
        prefix: tuple = ()
        resolve = self.table.resolve
        for part in split_commands(message):
            part = part.strip()
            if not part:
                continue
            sp = part.find(" ")
            if sp < 0:
                sp = part.find("\t")
            if sp < 0:
                header, rest = part, ""
            else:
                header, rest = part[:sp], part[sp + 1:].strip()
            query = header.endswith("?")
            if query:
                header = header[:-1]
            hu = header.upper()
            if hu.startswith(":"):
                hu = hu[1:]
                if not hu.startswith("*"):
                    prefix = ()
            if hu.startswith("*"):
                tokens = (hu,)
                common = True
            else:
                tokens = prefix + tuple(hu.split(":")) if prefix else tuple(hu.split(":"))
                common = False
            r = resolve(tokens)
            params = tuple(split_params(rest))
            if r is None:
                out.append(Parsed(None, query, params, (), part))
                break  # the rest of a message after an undefined header is discarded
            if not common:
                prefix = tokens[:-1]
            out.append(Parsed(r[0], query, params, r[1], part))
        return out


def parse_srs(message: str) -> list[tuple[str, bool, list[str], bool]]:
    """SRS lock-in syntax → [(MNEMONIC, is_query, params, spaced)]; unknown forms give mnemonic ''.

    ``spaced`` says whether whitespace separated the arguments from the mnemonic (the SR860
    requires it, the SR830 does not)."""
    out = []
    for part in message.split(";"):
        if not part.strip():
            continue
        m = _SRS.match(part)
        if not m:
            out.append(("", False, [part], False))
            continue
        out.append((m.group(1).upper(), m.group(2) is not None, split_params(m.group(4)),
                    bool(m.group(3))))
    return out
