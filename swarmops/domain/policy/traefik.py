"""Traefik labels under the restricted profile: an app's routers, services and middlewares carry its
own names, its rules match only its own hosts, and it cannot outrank or borrow another app's routes.
A service only says which port of the app's own tasks to reach (never a URL: Traefik would send the
app's requests anywhere its networks reach, the Docker socket proxy included); a middleware is of a
kind that makes no request of its own (no forwardAuth, no plugin, no file read from Traefik's disk).
Single sign-on is the one shared forwardAuth middleware of the config (`sso.middleware`), which any app's
router may name; a look-alike from the labels' providers is another app's."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swarmops.domain.policy.context import PolicyContext, Violation, owns

_NAMED = re.compile(r"^traefik\.(?P<proto>http|tcp|udp)\.(?P<kind>[A-Za-z]+)\.(?P<name>[^.]+)\.(?P<attr>.+)$")
_TOKEN = re.compile(r"\s*(\|\||&&|!|\(|\)|,|`[^`]*`|\"(?:[^\"\\]|\\.)*\"|[A-Za-z][A-Za-z0-9]*)")
HOST_MATCHERS = ("host", "hostheader", "hostsni")
# what a service of the app may set (Traefik's own attribute names, lower-cased): the port, scheme and
# behaviour of the load balancer over the app's own tasks; never server.url, a servers transport, or a
# weighted, mirroring or failover service that names other services
_SERVICE_ATTRS = re.compile(r"^loadbalancer\.(server\.(port|scheme)|passhostheader|responseforwarding\.flushinterval"
                            r"|sticky\.cookie(\.[a-z]+)?|healthcheck\.(path|interval|timeout|port|scheme|status|mode)"
                            r"|terminationdelay|proxyprotocol\.version)$")
# middleware kinds that only change the request or the answer; forwardAuth and plugins make requests of
# their own, errors names a service (checked below), basicAuth/digestAuth usersFile reads Traefik's disk
_MIDDLEWARE_KINDS = frozenset({
    "addprefix", "basicauth", "buffering", "chain", "circuitbreaker", "compress", "contenttype", "digestauth",
    "errors", "grpcweb", "headers", "inflightreq", "ipallowlist", "ipwhitelist", "passtlsclientcert", "ratelimit",
    "redirectregex", "redirectscheme", "replacepath", "replacepathregex", "retry", "stripprefix",
    "stripprefixregex", "inflightconn"})
REGEX_MATCHERS = ("hostregexp", "hostsniregexp")


def traefik(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    out: list[Violation] = []
    for where, labels in (("labels", s.get("labels")), ("deploy.labels", (s.get("deploy") or {}).get("labels"))):
        for label, value in (labels or {}).items():
            m = _NAMED.match(str(label).lower())
            if m:
                out += _named(svc, f"{where}.{label}", m, str(value), ctx)
    return out


def _v(rule: str, svc: str, key: str, message: str, fix: str) -> Violation:
    return Violation(rule, svc, f"services.{svc}.{key}", message, fix)


def _named(svc: str, key: str, m: re.Match[str], value: str, ctx: PolicyContext) -> list[Violation]:
    name, attr = m.group("name"), m.group("attr")
    if not owns(ctx, name, "-_"):
        return [_v("SO120", svc, key, f"Traefik {m.group('kind')[:-1]} {name!r} is not named for this app",
                   f"name it {ctx.app}-...")]
    if m.group("kind") == "services":
        return [] if _SERVICE_ATTRS.match(attr) else [_v(
            "SO130", svc, key, f"Traefik service attribute {attr!r} can send the app's requests elsewhere "
            "(only the port, scheme and load-balancer behaviour of its own tasks are allowed)",
            f"use traefik.{m.group('proto')}.services.{name}.loadbalancer.server.port")]
    if m.group("kind") == "middlewares":
        return _middleware(svc, key, name, attr, value, ctx)
    if m.group("kind") != "routers":
        return []
    if attr == "priority":
        return [_v("SO122", svc, key, "a router priority can take another app's requests", "remove it")]
    if attr == "rule":
        problem = rule_problem(value, ctx)
        return [_v("SO121", svc, key, problem, f"match Host(`{_own_host(ctx)}`) or a host in policy.allowed_hosts")
                ] if problem else []
    if attr == "middlewares":
        return _foreign_middlewares(svc, key, value, ctx)
    if attr == "service" and not owns(ctx, value.split("@")[0], "-_"):
        return [_v("SO120", svc, key, f"router service {value!r} is not this app's", f"use {ctx.app}-...")]
    return []


def _middleware(svc: str, key: str, name: str, attr: str, value: str, ctx: PolicyContext) -> list[Violation]:
    kind, _, rest = attr.partition(".")
    if kind not in _MIDDLEWARE_KINDS or rest.startswith("usersfile"):
        fix = ("ask the ops team for a shared middleware (policy.allowed_middlewares) or use one of the plain kinds"
               if kind != "forwardauth" or not ctx.sso_middleware else
               f"for single sign-on, name the shared {ctx.sso_middleware} in the router's middlewares instead")
        return [_v("SO131", svc, key, f"middleware {name!r}: {attr!r} makes Traefik send requests or read files "
                   "of its own (forwardAuth, plugins, usersFile)", fix)]
    if kind == "errors" and rest == "service" and not owns(ctx, value.split("@")[0], "-_"):
        return [_v("SO120", svc, key, f"errors service {value!r} is not this app's", f"use {ctx.app}-...")]
    if kind == "chain" and rest == "middlewares":
        return _foreign_middlewares(svc, key, value, ctx)
    return []


def _foreign_middlewares(svc: str, key: str, value: str, ctx: PolicyContext) -> list[Violation]:
    """SO123 for every middleware of a router's (or a chain's) list that is neither the app's own nor shared."""
    return [_v("SO123", svc, key, f"middleware {mw!r} is another app's", _fix_middleware(mw, ctx))
            for mw in (p.strip() for p in value.split(",")) if mw and not _own_middleware(mw, ctx)]


def _fix_middleware(refused: str, ctx: PolicyContext) -> str:
    sso = ctx.sso_middleware
    if sso and refused.partition("@")[0] == sso.partition("@")[0]:
        return f"for single sign-on, name exactly {sso} (the shared middleware)"
    return f"define {ctx.app}-... yourself"


def _own_host(ctx: PolicyContext) -> str:
    return f"{ctx.app}.{ctx.domain}" if ctx.domain else f"{ctx.app}.<domain>"


def _own_middleware(value: str, ctx: PolicyContext) -> bool:
    """The app's own (its labels, no provider or the label providers), the SSO door, or one the ops team
    shares. The SSO middleware is matched exactly: `sso@swarm` or a bare `sso` would be labels an app wrote."""
    name, _, provider = value.partition("@")
    return ((owns(ctx, name, "-_") and provider in ("", "swarm", "docker")) or value in ctx.allowed_middlewares
            or value == ctx.sso_middleware)


def host_allowed(host: str, ctx: PolicyContext) -> bool:
    host = host.lower().rstrip(".")
    if host in (h.lower() for h in ctx.allowed_hosts):
        return True
    if ctx.domain:
        return host == f"{ctx.app}.{ctx.domain}".lower()
    return host.startswith(f"{ctx.app}.") and host.count(".") >= 2


@dataclass
class _Parser:
    tokens: list[str]
    pos: int = 0

    def peek(self) -> str:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if expected is not None and token != expected:
            raise ValueError(f"expected {expected!r}")
        self.pos += 1
        return token


def rule_problem(rule: str, ctx: PolicyContext) -> str | None:
    """None when every request the rule matches names one of the app's hosts; else why not."""
    tokens = _tokens(rule)
    if tokens is None:
        return f"rule {rule!r} cannot be read"
    parser = _Parser(tokens)
    try:
        bounded, hosts = _expr(parser)
        if parser.peek():
            raise ValueError("trailing text")
    except ValueError as e:
        return f"rule {rule!r} cannot be read ({e})"
    foreign = [h for h in hosts if not host_allowed(h, ctx)]
    if foreign:
        return f"rule {rule!r} names host {foreign[0]!r}, which is not this app's"
    if not bounded:
        return f"rule {rule!r} matches requests for other hosts (every alternative needs a Host() of this app)"
    return None


def _tokens(rule: str) -> list[str] | None:
    out, pos = [], 0
    while pos < len(rule):
        if rule[pos:].strip() == "":
            break
        m = _TOKEN.match(rule, pos)
        if not m:
            return None
        out.append(m.group(1))
        pos = m.end()
    return out


def _expr(p: _Parser) -> tuple[bool, list[str]]:
    """An alternative matches only the app's hosts when both sides do; a conjunction when either does."""
    return _chain(p, "||", _term, lambda left, right: left and right)


def _term(p: _Parser) -> tuple[bool, list[str]]:
    return _chain(p, "&&", _factor, lambda left, right: left or right)


def _chain(p: _Parser, op: str, operand: Callable[[_Parser], tuple[bool, list[str]]],
           combine: Callable[[bool, bool], bool]) -> tuple[bool, list[str]]:
    bounded, hosts = operand(p)
    while p.peek() == op:
        p.take()
        right, more = operand(p)
        bounded, hosts = combine(bounded, right), hosts + more
    return bounded, hosts


def _factor(p: _Parser) -> tuple[bool, list[str]]:
    token = p.take()
    if token == "!":
        _, hosts = _factor(p)
        return False, hosts
    if token == "(":
        found = _expr(p)
        p.take(")")
        return found
    if not token[:1].isalpha():
        raise ValueError(f"unexpected {token!r}")
    args = _args(p)
    matcher = token.lower()
    if matcher in REGEX_MATCHERS:
        raise ValueError(f"{token} matches hosts by pattern, which may be another app's")
    if matcher in HOST_MATCHERS:
        return bool(args), args
    return False, []


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
