"""The backlog again, with a round trip of 20 ms between the daemon and Dovecot (``tc netem``).

Two network namespaces that this script creates, joined by a veth pair it creates: Dovecot runs
in one, the daemon (and the naive reader) in the other. Only loopback addresses are used, and
only inside those namespaces: the server side of the pair is 127.0.0.1/32, the client side
127.0.0.2/32, ``lo`` stays down in both (so 127.0.0.1 is *across* the pair for the client) and
``route_localnet`` lets the kernel route 127/8 over the pair. Nothing outside the two namespaces
is touched; they (and the pair with them) are removed at the end, whatever happens.

``netem`` delays every packet by half the round trip on each side of the pair. A kernel built
without ``sch_netem`` refuses the qdisc (« Specified qdisc kind is unknown »): the run then says
so and is skipped.

The daemon's configuration names 127.0.0.1 as before, so its plain-IMAP-on-loopback rule holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import harness
from harness import HOME, Entry, log

from triage.testing import DovecotServer
from triage.testing.dovecot import ensure_dovecot

SERVER_ADDRESS, CLIENT_ADDRESS = "127.0.0.1", "127.0.0.2"


def sh(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip() or result.stdout.strip()}")
    return result


class Pair:
    """Two namespaces joined by a veth pair with loopback addresses; :meth:`remove` them."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}"
        self.server_ns, self.client_ns = f"triage-bench-s{tag}", f"triage-bench-c{tag}"
        self.server_if, self.client_if = f"tbs{tag}", f"tbc{tag}"  # at most 15 characters

    def create(self) -> None:
        sh("ip", "netns", "add", self.server_ns)
        sh("ip", "netns", "add", self.client_ns)
        sh("ip", "link", "add", self.server_if, "type", "veth", "peer", "name", self.client_if)
        for ns, dev, mine, peer in ((self.server_ns, self.server_if, SERVER_ADDRESS,
                                     CLIENT_ADDRESS),
                                    (self.client_ns, self.client_if, CLIENT_ADDRESS,
                                     SERVER_ADDRESS)):
            sh("ip", "link", "set", dev, "netns", ns)
            run = ("ip", "netns", "exec", ns)
            sh(*run, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1",
               f"net.ipv4.conf.{dev}.route_localnet=1", "net.ipv4.conf.all.rp_filter=0",
               f"net.ipv4.conf.{dev}.rp_filter=0")
            sh(*run, "ip", "addr", "add", f"{mine}/32", "dev", dev)
            sh(*run, "ip", "link", "set", dev, "up")
            sh(*run, "ip", "route", "add", f"{peer}/32", "dev", dev, "src", mine)

    def delay(self, one_way_ms: float) -> None:
        """Add ``one_way_ms`` on each side (a round trip of twice that); raises if refused."""
        for ns, dev in ((self.server_ns, self.server_if), (self.client_ns, self.client_if)):
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "netem",
               "delay", f"{one_way_ms}ms", "limit", "100000")

    def client(self, command: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.client_ns, *command]

    def remove(self) -> None:
        for ns in (self.server_ns, self.client_ns):  # the veth pair goes with them
            sh("ip", "netns", "del", ns, check=False)

    def round_trip_ms(self, port: int) -> float:
        """The median time of a TCP connect from the client side (one round trip)."""
        probe = ("import socket,statistics,time\nd=[]\nfor _ in range(9):\n t=time.perf_counter()"
                 f"\n s=socket.create_connection(('{SERVER_ADDRESS}',{port}),timeout=5)\n"
                 " d.append(time.perf_counter()-t)\n s.close()\n"
                 "print(statistics.median(d)*1000)")
        out = sh(*self.client([sys.executable, "-c", probe])).stdout.strip()
        return float(out)


@contextlib.contextmanager
def dovecot_in(pair: Pair) -> Iterator[DovecotServer]:
    """A :class:`DovecotServer` (its configuration, users, maildir) run in the server namespace."""
    server = DovecotServer(host=SERVER_ADDRESS)
    process = subprocess.Popen(
        ["ip", "netns", "exec", pair.server_ns, ensure_dovecot(), "-F", "-c",
         str(server.config_path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        probe = (f"import socket\ns=socket.create_connection(('{SERVER_ADDRESS}',{server.port}),"
                 "timeout=2)\nassert s.recv(64).startswith(b'* OK')")
        deadline = time.monotonic() + 15
        while sh(*pair.client([sys.executable, "-c", probe]), check=False).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Dovecot did not start in the namespace:\n"
                                   + server.log_tail())
            time.sleep(0.2)
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, 9)
        process.wait(10)
        server.close()


def run(work: Path, entries: list[Entry], baseline: dict[str, object] | None,
        one_way_ms: float = 10.0, naive_sample: int = 300) -> dict[str, object]:
    """The backlog with ``2 * one_way_ms`` of round trip; ``{"skipped": why}`` when impossible."""
    if os.geteuid() != 0:
        return _skip("needs root (network namespaces and tc)")
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return _skip(f"`{tool}` is missing: apt-get install -y iproute2")
    folder = work / "netem"
    folder.mkdir(parents=True, exist_ok=True)
    pair = Pair()
    try:
        try:
            pair.create()
        except RuntimeError as exc:
            return _skip(f"cannot create the namespaces and the veth pair: {exc}")
        if one_way_ms > 0:
            try:
                pair.delay(one_way_ms)
            except RuntimeError as exc:
                return _skip(f"the kernel refuses netem ({exc}); this kernel has no sch_netem")
        with dovecot_in(pair) as server:
            rtt = pair.round_trip_ms(server.port)
            log(f"netem: round trip {rtt:.2f} ms between the namespaces")
            deployment = harness.bench_deploy(server, folder)
            account = deployment.account_of(HOME)
            harness.fill_maildir(server, account, entries)
            secret = deployment.config_path.parent / f"imap-{HOME}.secret"
            result: dict[str, object] = {"round_trip_ms": round(rtt, 2),
                                         "one_way_delay_ms": one_way_ms,
                                         "messages": len(entries)}
            log(f"netem: naive reader on the first {naive_sample} messages …")
            naive = harness.measured(pair.client(harness.naive_command(
                account, secret, limit=naive_sample)), folder / "naive.log")
            read = json.loads(naive.stdout.strip().splitlines()[-1])
            result["naive"] = {"messages": read["messages"], "seconds": round(naive.seconds, 2),
                               "rate": round(read["messages"] / naive.seconds, 1)}
            log(f"netem: naive reader {read['messages'] / naive.seconds:.0f} messages/s")
            log("netem: triage run --once …")
            tri = harness.measured(pair.client(harness.triage_command(deployment)),
                                   folder / "triage.log")
            counts = harness.folder_counts(server, account)
            if tri.returncode != 0 or counts.get("INBOX", -1) != 0:
                raise SystemExit(f"triage under netem failed ({tri.returncode}, INBOX "
                                 f"{counts.get('INBOX')}): "
                                 + (folder / "triage.log").read_text()[-2000:])
            rate = len(entries) / tri.seconds
            result["triage"] = {"seconds": round(tri.seconds, 2), "rate": round(rate, 1),
                                "max_rss_mb": round(tri.max_rss_mb, 1)}
            base = (baseline or {}).get("triage")
            if isinstance(base, dict):
                result["rate_vs_loopback"] = round(rate / float(base["rate"]), 2)
            result["ratio"] = round(rate / result["naive"]["rate"], 2)  # type: ignore[index]
            log(f"netem: triage {rate:.0f} messages/s ({tri.seconds:.0f} s)"
                + (f", {result['rate_vs_loopback']:.2f} of the loopback rate"
                   if "rate_vs_loopback" in result else ""))
            return result
    finally:
        pair.remove()


def _skip(why: str) -> dict[str, object]:
    log(f"netem: skipped: {why}")
    return {"skipped": why}
