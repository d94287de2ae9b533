"""Listen sockets: DNS (UDP and TCP on every listen address), the metrics port, the API.

One process binds its own. With workers, the supervisor binds one `Slot` per worker
and keeps them open for as long as it runs; a worker serves its slot's sockets, and the
worker that replaces it on a reload serves the very same ones, so no socket ever leaves
its SO_REUSEPORT group and nothing queued on one is lost (see gslb/server/workers.py).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from gslb.settings import ListenAddress, Settings

DNS_BACKLOG = 1024
HTTP_BACKLOG = 512


@dataclass
class Listener:
    """One listen address's pair of bound sockets (the TCP one listening)."""

    udp: socket.socket
    tcp: socket.socket


@dataclass
class Slot:
    """Every socket one worker serves."""

    dns: list[Listener] = field(default_factory=list)
    metrics: socket.socket | None = None

    def sockets(self) -> list[socket.socket]:
        extra = [self.metrics] if self.metrics is not None else []
        return [sock for listener in self.dns for sock in (listener.udp, listener.tcp)] + extra

    def close(self) -> None:
        for sock in self.sockets():
            sock.close()


def bind_slot(settings: Settings) -> Slot:
    """A worker's sockets, all shareable with its siblings (SO_REUSEPORT); all or none."""
    slot = Slot()
    try:
        slot.dns = bind_listeners(settings, reuse_port=True)
        if settings.metrics is not None:
            slot.metrics = bind_http(settings.metrics, reuse_port=True)
    except OSError:
        slot.close()
        raise
    return slot


def bind_listeners(settings: Settings, reuse_port: bool) -> list[Listener]:
    """A bound UDP socket and a listening TCP socket for every listen address and
    family; all or none (OSError)."""
    listeners: list[Listener] = []
    try:
        for address in settings.listen:
            for family, host in families(address):
                udp = bound_socket(family, socket.SOCK_DGRAM, host, address.port, reuse_port)
                try:
                    tcp = bound_socket(family, socket.SOCK_STREAM, host, address.port,
                                       reuse_port)
                except OSError:
                    udp.close()
                    raise
                listeners.append(Listener(udp, tcp))
    except OSError:
        close_listeners(listeners)
        raise
    return listeners


def close_listeners(listeners: list[Listener]) -> None:
    for listener in listeners:
        listener.udp.close()
        listener.tcp.close()


def bind_http(address: ListenAddress, reuse_port: bool) -> socket.socket:
    """A listening TCP socket for an HTTP server (the metrics port, the API): one
    address, IPv6 when the host has a colon, all IPv4 addresses when it is empty."""
    family, host = families(address)[0]
    return bound_socket(family, socket.SOCK_STREAM, host, address.port, reuse_port,
                        HTTP_BACKLOG, v6only=False)


def families(address: ListenAddress) -> list[tuple[int, str]]:
    """A bare port means every IPv4 and every IPv6 address."""
    if address.host == "":
        return [(socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")]
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    return [(family, address.host)]


def check_listen(settings: Settings) -> None:
    """Bind and release every listen socket without SO_REUSEPORT: OSError if any address
    is taken, even by another process that uses SO_REUSEPORT (which workers would join)."""
    for option, http in (("--metrics", settings.metrics), ("--api", settings.api)):
        if http is not None:
            try:
                bind_http(http, reuse_port=False).close()
            except OSError as exc:
                raise OSError(exc.errno, f"{option} {http}: {exc.strerror}") from exc
    for address in settings.listen:
        for family, host in families(address):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                try:
                    bound_socket(family, kind, host, address.port).close()
                except OSError as exc:
                    kind_name = "udp" if kind == socket.SOCK_DGRAM else "tcp"
                    raise OSError(exc.errno, f"{address} ({kind_name}): {exc.strerror}") from exc


def bound_socket(family: int, kind: int, host: str, port: int, reuse_port: bool = False,
                 backlog: int = DNS_BACKLOG, v6only: bool = True) -> socket.socket:
    """Bound, listening when it is TCP, non-blocking; IPv6 sockets are IPv6 only unless
    `v6only` is False (one HTTP socket on `::` takes IPv4 too)."""
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and v6only:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
