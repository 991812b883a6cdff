"""Traefik router rules, read one way for the whole of swarmops: the policy (which hosts a rule may match,
domain/policy/traefik.py) and the live state (which hosts a router behind single sign-on is for,
domain/live.py) share this reader, so a host the policy did not see as a host is never one Polise is told of.

A rule is Traefik's expression: matchers (`Host(`a`)`, `Header(`X`, "v")` ...) with `&&`, `||`, `!` and
parentheses; an argument is one backquoted or double-quoted string, whatever it contains (`Host(` inside
another matcher's argument is text). What this reader cannot read is a ValueError: the policy refuses such a
rule, the live state reads no host from it."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\s*(\|\||&&|!|\(|\)|,|`[^`]*`|\"(?:[^\"\\]|\\.)*\"|[A-Za-z][A-Za-z0-9]*)")
HOST_MATCHERS = ("host", "hostheader", "hostsni")   # lower-case: a request (or a TLS hello) names its host
HTTP_HOST_MATCHERS = ("host", "hostheader")
REGEX_MATCHERS = ("hostregexp", "hostsniregexp")


@dataclass(frozen=True)
class Matcher:
    name: str                 # as written (`Host`, `host` ...); compare `kind`
    args: tuple[str, ...]     # the strings between the quotes, as written
    negated: bool             # under an odd number of `!`

    @property
    def kind(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Rule:
    """A rule read: every matcher in it, in order, and whether every request it matches names one of its
    host matchers' hosts (each alternative of `||` has a host matcher, outside any `!`)."""

    matchers: tuple[Matcher, ...]
    bounded: bool

    def hosts(self, kinds: tuple[str, ...] = HOST_MATCHERS, negated: bool = True) -> list[str]:
        """The arguments of the matchers of `kinds` (all host matchers by default), negated ones too unless
        `negated` is False."""
        return [a for m in self.matchers if m.kind in kinds and (negated or not m.negated) for a in m.args]


def parse_rule(rule: str) -> Rule:
    """The rule as Traefik's expression; ValueError when it cannot be read."""
    parser = _Parser(_tokens(rule))
    bounded = _expr(parser, False)
    if parser.peek():
        raise ValueError("trailing text")
    return Rule(tuple(parser.matchers), bounded)


def _tokens(rule: str) -> list[str]:
    out, pos = [], 0
    while pos < len(rule):
        if rule[pos:].strip() == "":
            break
        m = _TOKEN.match(rule, pos)
        if not m:
            raise ValueError(f"unexpected text at {pos}")
        out.append(m.group(1))
        pos = m.end()
    return out


@dataclass
class _Parser:
    tokens: list[str]
    pos: int = 0
    matchers: list[Matcher] = field(default_factory=list)

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            raise ValueError(f"expected {expected!r}")
        if not token:
            raise ValueError("unexpected end")
        self.pos += 1
        return token


def _expr(p: _Parser, negated: bool) -> bool:
    """An alternative matches only its hosts when both sides do; a conjunction when either does."""
    return _chain(p, "||", negated, _term, lambda left, right: left and right)


def _term(p: _Parser, negated: bool) -> bool:
    return _chain(p, "&&", negated, _factor, lambda left, right: left or right)


def _chain(p: _Parser, op: str, negated: bool, operand: Callable[[_Parser, bool], bool],
           combine: Callable[[bool, bool], bool]) -> bool:
    bounded = operand(p, negated)
    while p.peek() == op:
        p.take()
        bounded = combine(bounded, operand(p, negated))
    return bounded


def _factor(p: _Parser, negated: bool) -> bool:
    token = p.take()
    if token == "!":
        _factor(p, not negated)
        return False
    if token == "(":
        bounded = _expr(p, negated)
        p.take(")")
        return bounded
    if not token[:1].isalpha():
        raise ValueError(f"unexpected {token!r}")
    args = _args(p)
    p.matchers.append(Matcher(token, tuple(args), negated))
    return token.lower() in HOST_MATCHERS and bool(args)


def _args(p: _Parser) -> list[str]:
    p.take("(")
    args: list[str] = []
    while p.peek() != ")":
        token = p.take()
        if token == ",":
            continue
        if token[:1] not in ("`", '"'):
            raise ValueError(f"unexpected {token!r}")
        args.append(token[1:-1])
    p.take(")")
    return args
