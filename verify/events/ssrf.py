"""The SSRF guard: a webhook URL may only lead to a public address, unless the operator allows more.

A URL is checked twice: its form when it is given (subscription or StatusCallback), and its resolved
addresses just before every delivery. The caller then connects to the address that was checked (the
IP is pinned: no second DNS lookup that could answer differently), keeping the Host header and TLS
SNI of the name, and follows no redirect.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

# Named on top of what ``ipaddress`` already calls non-global, so the reason in a refusal is clear.
_NAMED: tuple[tuple[str, Network], ...] = (
    ("cloud metadata", ipaddress.ip_network("169.254.169.254/32")),
    ("cloud metadata", ipaddress.ip_network("fd00:ec2::254/128")),
    ("cloud metadata", ipaddress.ip_network("100.100.100.200/32")),
    ("carrier-grade NAT", ipaddress.ip_network("100.64.0.0/10")),
)
# IPv6 prefixes that carry an IPv4 address: NAT64, 6to4 and Teredo are judged by that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class UnsafeURL(ValueError):
    """The URL is malformed, or leads to an address the guard refuses; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to ``address`` and present ``host`` (Host header and SNI)."""

    scheme: str
    host: str
    port: int
    address: str
    path: str  # path and query, as given

    @property
    def pinned_url(self) -> str:
        ip = ipaddress.ip_address(self.address)
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def refusal(address: str, allow: Sequence[Network] = ()) -> str | None:
    """Why the guard refuses ``address``, or None if it may be reached."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if _allowed(ip, allow):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            # An IPv6 form of an IPv4 address leads where that address leads.
            if _allowed(embedded, allow):
                return None
            inner = _classify(embedded)
            if inner is not None:
                return inner if ip.ipv4_mapped else f"{inner} (inside an IPv6 address)"
            if ip.ipv4_mapped:
                return None
    return _classify(ip)


def _allowed(ip: IPAddress, allow: Sequence[Network]) -> bool:
    return any(ip in net for net in allow if net.version == ip.version)


def _classify(ip: IPAddress) -> str | None:
    for name, net in _NAMED:
        if ip.version == net.version and ip in net:
            return name
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("not globally routable", not ip.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_form(url: str, allow: Sequence[Network] = ()) -> tuple[str, str, int, str]:
    """Check a URL's form without resolving it: (scheme, host, port, path and query).

    An IP literal is judged at once; a name is judged when it is resolved (``resolve_target``).
    """
    if len(url) > 2048:
        raise UnsafeURL("is longer than 2048 characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UnsafeURL("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("must be an http or https URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("must not carry credentials (user:password@)")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("has no host")
    if any(c.isspace() for c in url.strip()):
        raise UnsafeURL("must not contain spaces")
    port = port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    check_host(host, allow)
    return scheme, host, port, path


def check_host(host: str, allow: Sequence[Network] = ()) -> None:
    """An IP literal is judged at once; a name is judged when it is resolved (``resolve_host``)."""
    literal = _literal(host)
    if literal is not None:
        reason = refusal(literal, allow)
        if reason is not None:
            raise UnsafeURL(f"leads to a {reason} address")


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_target(
    url: str, allow: Sequence[Network] = (), resolver: Resolver = system_resolver
) -> Target:
    """Resolve ``url``'s host and check every address; refuse if any of them is refused (a name that
    also resolves to a private address is not trusted with the public one)."""
    scheme, host, port, path = check_form(url, allow)
    return Target(scheme, host, port, resolve_host(host, port, allow, resolver), path)


def resolve_host(
    host: str, port: int, allow: Sequence[Network] = (), resolver: Resolver = system_resolver
) -> str:
    """The address to connect to for ``host``: every address it resolves to is checked, and the
    first is returned (a name that also resolves to a private address is not trusted at all)."""
    check_host(host, allow)
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"host {host!r} does not resolve") from None
    if not addresses:
        raise UnsafeURL(f"host {host!r} does not resolve")
    for address in addresses:
        reason = refusal(address, allow)
        if reason is not None:
            raise UnsafeURL(f"host {host!r} resolves to a {reason} address")
    return addresses[0]
