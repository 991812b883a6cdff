"""Traefik labels under the restricted profile: an app's routers, services and middlewares carry its
own names, its rules match only its own hosts, and it cannot outrank or borrow another app's routes.
A service only says which port of the app's own tasks to reach (never a URL: Traefik would send the
app's requests anywhere its networks reach, the Docker socket proxy included); a middleware is of a
kind that makes no request of its own (no forwardAuth, no plugin, no file read from Traefik's disk).
Single sign-on is the one shared forwardAuth middleware of the config (`sso.middleware`), which any app's
router may name; a look-alike from the labels' providers is another app's. A router's service is one of the
app's own labels (never `api@internal` or a file provider's). TCP and UDP routes go around all of that (SO132):
the one TCP router allowed passes the TLS of the app's own host through to the app untouched."""

from __future__ import annotations

import re
from typing import Any

from swarmops.domain.policy.context import PolicyContext, Violation, owns
from swarmops.domain.traefikrule import HOST_MATCHERS, REGEX_MATCHERS, parse_rule

_NAMED = re.compile(r"^traefik\.(?P<proto>http|tcp|udp)\.(?P<kind>[A-Za-z]+)\.(?P<name>[^.]+)\.(?P<attr>.+)$")
LABEL_PROVIDERS = ("", "swarm", "docker")   # how a router names a service or middleware of service labels
# a TCP router may only hand the app's own host's TLS connections to the app as they come (passthrough): one
# that terminates TLS would do it with the office's wildcard certificate and offer HTTP/2, and browsers send
# the requests of every host that certificate covers down such a connection (connection coalescing), with
# their cookies, past sso-strip, the /_sso/ door and forwardAuth
_TCP_ROUTER_ATTRS = frozenset({"rule", "entrypoints", "service", "tls", "tls.passthrough"})
_TRUE = ("true", "True", "TRUE")   # what Go's strconv.ParseBool reads as true, less 1, t and T
_LAYER4_FIX = "ask the ops team (privileged profile)"
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


def traefik(svc: str, s: dict[str, Any], _doc: dict[str, Any], ctx: PolicyContext) -> list[Violation]:
    out: list[Violation] = []
    for where, labels in (("labels", s.get("labels")), ("deploy.labels", (s.get("deploy") or {}).get("labels"))):
        tcp_routers: dict[str, str] = {}   # each TCP router of this label set (as written) -> its first key
        passthrough: set[str] = set()
        for label, value in (labels or {}).items():
            key, lowered = f"{where}.{label}", str(label).lower()
            m = _NAMED.match(lowered)
            if lowered.startswith(("traefik.tcp.", "traefik.udp.")):
                problem = _layer4(m, str(value))
                if problem:
                    out.append(_v("SO132", svc, key, problem, _LAYER4_FIX))
                    continue
                if m and m.group("kind") == "routers":
                    router = str(label).split(".", 4)[3]
                    tcp_routers.setdefault(router, key)
                    if m.group("attr") == "tls.passthrough":
                        passthrough.add(router)
            if m:
                out += _named(svc, key, m, str(value), ctx)
        out += [_terminating(svc, first, router) for router, first in tcp_routers.items() if router not in passthrough]
    return out


def _terminating(svc: str, key: str, router: str) -> Violation:
    return _v("SO132", svc, key, f"TCP router {router!r} would terminate TLS with the office's wildcard certificate: "
              "browsers send other hosts' requests, with their cookies and Polise's session, down such a "
              "connection (HTTP/2 connection coalescing), past sso-strip, the /_sso/ door and single sign-on",
              f"{_LAYER4_FIX}, or pass TLS through to the app: traefik.tcp.routers.{router}.tls.passthrough=true")


def _layer4(m: re.Match[str] | None, value: str) -> str | None:
    """Why a `traefik.tcp.*` or `traefik.udp.*` label is refused; None for a TCP router that passes TLS
    through to the app (whose certificate is then its own) and for the port of a TCP service of the app."""
    if m is None or m.group("proto") != "tcp":
        return "UDP and TCP routes go around the HTTP routers, single sign-on and its checks included"
    kind, attr = m.group("kind"), m.group("attr")
    if kind == "services":
        return None   # SO130 keeps it to the app's own tasks
    if kind != "routers" or attr not in _TCP_ROUTER_ATTRS:
        return (f"TCP {kind} attribute {attr!r} is not one of a TLS-passthrough router's "
                f"({', '.join(sorted(_TCP_ROUTER_ATTRS))})")
    if attr.startswith("tls") and value not in _TRUE:
        return f"a TCP router's {attr} must be true: only a TLS-passthrough router is allowed"
    return None


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
        matcher = "HostSNI" if m.group("proto") == "tcp" else "Host"
        return [_v("SO121", svc, key, problem, f"match {matcher}(`{_own_host(ctx)}`) or a host in "
                   "policy.allowed_hosts")] if problem else []
    if attr == "middlewares":
        return _foreign_middlewares(svc, key, value, ctx)
    if attr == "service" and not _own_service(value, ctx):
        return [_v("SO120", svc, key, f"router service {value!r} is not this app's (its own, from its labels)",
                   f"use {ctx.app}-... (no @provider, or @swarm)")]
    return []


def _middleware(svc: str, key: str, name: str, attr: str, value: str, ctx: PolicyContext) -> list[Violation]:
    kind, _, rest = attr.partition(".")
    if kind not in _MIDDLEWARE_KINDS or rest.startswith("usersfile"):
        fix = ("ask the ops team for a shared middleware (policy.allowed_middlewares) or use one of the plain kinds"
               if kind != "forwardauth" or not ctx.sso_middleware else
               f"for single sign-on, name the shared {ctx.sso_middleware} in the router's middlewares instead")
        return [_v("SO131", svc, key, f"middleware {name!r}: {attr!r} makes Traefik send requests or read files "
                   "of its own (forwardAuth, plugins, usersFile)", fix)]
    if kind == "errors" and rest == "service" and not _own_service(value, ctx):
        return [_v("SO120", svc, key, f"errors service {value!r} is not this app's (its own, from its labels)",
                   f"use {ctx.app}-... (no @provider, or @swarm)")]
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
    return ((owns(ctx, name, "-_") and provider in LABEL_PROVIDERS) or value in ctx.allowed_middlewares
            or value == ctx.sso_middleware)


def _own_service(value: str, ctx: PolicyContext) -> bool:
    """A service of the app's own labels: `api@internal`, `sso-polise@file` or `<app>@file` are Traefik's
    or the ops team's, whatever the name says."""
    name, _, provider = value.partition("@")
    return owns(ctx, name, "-_") and provider in LABEL_PROVIDERS


def host_allowed(host: str, ctx: PolicyContext) -> bool:
    host = host.lower().rstrip(".")
    if host in (h.lower() for h in ctx.allowed_hosts):
        return True
    if ctx.domain:
        return host == f"{ctx.app}.{ctx.domain}".lower()
    return host.startswith(f"{ctx.app}.") and host.count(".") >= 2


def rule_problem(rule: str, ctx: PolicyContext) -> str | None:
    """None when every request the rule matches names one of the app's hosts; else why not."""
    try:
        read = parse_rule(rule)
    except ValueError as e:
        return f"rule {rule!r} cannot be read ({e})"
    pattern = next((m.name for m in read.matchers if m.kind in REGEX_MATCHERS), None)
    if pattern:
        return f"rule {rule!r} cannot be read ({pattern} matches hosts by pattern, which may be another app's)"
    foreign = [h for h in read.hosts(HOST_MATCHERS) if not host_allowed(h, ctx)]
    if foreign:
        return f"rule {rule!r} names host {foreign[0]!r}, which is not this app's"
    if not read.bounded:
        return f"rule {rule!r} matches requests for other hosts (every alternative needs a Host() of this app)"
    return None
