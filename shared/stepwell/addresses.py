"""Which network addresses an http step may reach.

By default an http step reaches public addresses only: the classes :func:`refused_class` names
(loopback, link-local, private, unique-local, multicast, unspecified and the other reserved
ranges) are refused, because whoever chooses a step's url (often whoever starts a run) would
otherwise choose where the runner's network identity goes: the instance metadata address, the
VPC's internal services, the stack's own local API. An :class:`AllowList` of hostnames and
CIDRs (a workflow's ``allow_hosts``, the stack's ``HttpAllowHosts``) lets a team call its
internal services anyway.

Addresses are judged as the resolver returned them, as :mod:`ipaddress` objects, so no
spelling of a host (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``) gets around the check.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_PRIVATE_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for, when it is one (``::ffff:10.0.0.1``,
    NAT64's ``64:ff9b::10.0.0.1``), else the address itself: a connection to it reaches the
    IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refused_class(address: IPAddress) -> str | None:
    """The class of a non-public address (``"loopback"``, ``"link-local"``, ``"private"``,
    ``"unique-local"``, ``"multicast"``, ``"unspecified"``, ``"reserved"``), or None."""
    ip = embedded(address)
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _UNIQUE_LOCAL:
        return "unique-local"
    if any(ip in network for network in _PRIVATE_V4):
        return "private"
    if not ip.is_global or ip.is_reserved:
        # Documentation, benchmarking, broadcast, 240.0.0.0/4, site-local ...: nothing a
        # workflow has reason to call, and where some networks route their own things.
        return "reserved"
    return None


def allow_entry(text: str) -> str:
    """One allow-list entry, normalised: a hostname (``api.internal.example.com``), a wildcard
    for its subdomains (``*.internal.example.com``), an address or a CIDR (``10.0.0.0/8``).
    Raises ValueError saying how to write it."""
    entry = text.strip().lower().rstrip(".") if isinstance(text, str) else ""
    if not entry:
        raise ValueError("an empty entry: write a hostname or a CIDR")
    network = _network(entry)
    if network is not None:
        if network.network_address != ipaddress.ip_address(entry.split("/")[0]):
            raise ValueError(f"{text!r} has host bits set: write {str(network)!r}")
        return str(network)
    if any(mark in entry for mark in ("/", "[", "@")):
        host = entry.split("://")[-1].split("/")[0].split("@")[-1].strip("[]")
        raise ValueError(f"{text!r} is not a host: write the host alone (e.g. {host!r}) or a CIDR")
    name = entry.removeprefix("*.")
    if ":" in name:
        host = name.split(":")[0]
        raise ValueError(f"{text!r}: an entry names a host, not a port: write {host!r}")
    if not _HOSTNAME.match(name):
        raise ValueError(
            f"{text!r} is neither a hostname (api.internal.example.com, *.internal.example.com)"
            " nor an address or CIDR (10.0.0.0/8, fd00::/8)"
        )
    return entry


def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks an http step may reach even when they are not public."""

    hosts: frozenset[str] = frozenset()
    """Hostnames allowed whatever they resolve to; ``*.`` entries allow their subdomains."""
    networks: tuple[IPNetwork, ...] = ()
    """Resolved addresses allowed wherever their hostname came from."""

    @classmethod
    def of(cls, entries: Iterable[str]) -> AllowList:
        """The list of ``entries`` (each as :func:`allow_entry` takes it; it raises)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = allow_entry(raw)
            network = _network(entry)
            if network is None:
                hosts.add(entry)
            else:
                networks.append(network)
        return cls(frozenset(hosts), tuple(networks))

    def __or__(self, other: AllowList) -> AllowList:
        return AllowList(self.hosts | other.hosts, self.networks + other.networks)

    def allows_host(self, host: str) -> bool:
        """Whether the hostname ``host`` is allowed (whatever it resolves to)."""
        name = host.lower().rstrip(".")
        if name in self.hosts:
            return True
        return any(h.startswith("*.") and name.endswith(h[1:]) for h in self.hosts)

    def allows_address(self, address: IPAddress) -> bool:
        """Whether ``address`` is in an allowed network."""
        candidates = {address, embedded(address)}
        return any(ip in network for ip in candidates for network in self.networks)


_EXECUTE_API = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


def execute_api_region(host: str) -> str | None:
    """The region of an API Gateway endpoint's host (``ID.execute-api.REGION.amazonaws.com``);
    None for any other host."""
    found = _EXECUTE_API.match(host)
    return found.group(1) if found else None
