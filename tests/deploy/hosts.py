"""Hosts of the test's own: one network namespace per site, joined by a bridge, torn down after.

    with Hosts(4) as hosts:
        hosts.address(2)              # "198.18.<net>.12": site 2's own address
        hosts.run(2, ["ip", "addr"])  # a command inside site 2's namespace
        hosts.throttle(3, "10mbit")   # both directions of site 3's link, token bucket (tc tbf)
        hosts.cut(1); hosts.mend(1)   # site 1's cable pulled, then plugged back

The addresses come from 198.18.0.0/15 (RFC 2544, set aside for tests of network devices), a
/24 per set of hosts; the test process reaches them from the root namespace through the bridge
(whose address is .254). Nothing else is routed: traffic only ever goes to these addresses.
Needs root (ip netns, veth, bridge, tc). Here `tc` has `tbf` (a token bucket: a slow line) but
neither `netem` nor classifiers, so a cut is the link set down.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

HOST_ADDRESS_OFFSET = 10  # site k is .1k in its /24 (so "{site}" templates name it); bridge .254


class HostsUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, or no iproute2)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Hosts:
    def __init__(self, count: int):
        if os.geteuid() != 0:
            raise HostsUnavailable("network namespaces need root")
        self.count = count
        tag = os.getpid() % 10_000
        self.net = tag % 256  # the third octet of 198.18.<net>.0/24 (and 198.19 past 255)
        self.prefix = f"198.{18 + (tag // 256) % 2}.{self.net}"
        self.bridge = f"psbr{tag}"
        self.namespaces = [f"ps{tag}-h{k}" for k in range(count)]
        self.outer = [f"ps{tag}v{k}" for k in range(count)]  # the root side of each veth
        self._made: list[tuple[str, ...]] = []  # what to undo, newest last

    def address(self, k: int) -> str:
        return f"{self.prefix}.{k + HOST_ADDRESS_OFFSET}"

    def address_template(self) -> str:
        """Every host's address with "{site}" for its number (settings templates), k < 10."""
        return f"{self.prefix}.1{{site}}"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.254"

    def ns_command(self, k: int) -> list[str]:
        """The prefix that runs a command inside site k's namespace."""
        return ["ip", "netns", "exec", self.namespaces[k]]

    def run(self, k: int, command: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.ns_command(k), *command], capture_output=True, text=True,
                              check=check)

    # --- making and unmaking ------------------------------------------------------------------
    def __enter__(self) -> Hosts:
        try:
            self._make()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _make(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", "del", self.bridge))
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for k, (ns, outer) in enumerate(zip(self.namespaces, self.outer)):
            _ip("netns", "add", ns)
            self._made.append(("netns", "del", ns))
            _ip("link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns)
            self._made.append(("link", "del", outer))
            _ip("link", "set", outer, "master", self.bridge)
            _ip("link", "set", outer, "up")
            for args in (("link", "set", "lo", "up"),
                         ("addr", "add", f"{self.address(k)}/24", "dev", "eth0"),
                         ("link", "set", "eth0", "up")):
                self.run(k, ["ip", *args])

    def close(self) -> None:
        """Undo everything made, newest first; what is already gone is fine."""
        while self._made:
            _ip(*self._made.pop(), check=False)

    # --- what a test does to a link -------------------------------------------------------------
    def _qdisc_both_ways(self, k: int, *qdisc: str) -> None:
        subprocess.run(["tc", "qdisc", "replace", "dev", self.outer[k], "root", *qdisc],
                       capture_output=True, text=True, check=True)
        self.run(k, ["tc", "qdisc", "replace", "dev", "eth0", "root", *qdisc])

    def throttle(self, k: int, rate: str = "10mbit") -> None:
        """Site k's link, both ways, at `rate` (a token bucket: what a slow line does)."""
        self._qdisc_both_ways(k, "tbf", "rate", rate, "burst", "64kb", "latency", "400ms")

    def cut(self, k: int) -> None:
        """Site k's cable pulled: its link goes down (packets sent to or from it are lost)."""
        _ip("link", "set", self.outer[k], "down")

    def mend(self, k: int) -> None:
        """Site k's link back to normal: up, and no throttle."""
        _ip("link", "set", self.outer[k], "up")
        subprocess.run(["tc", "qdisc", "del", "dev", self.outer[k], "root"], capture_output=True)
        self.run(k, ["tc", "qdisc", "del", "dev", "eth0", "root"], check=False)
