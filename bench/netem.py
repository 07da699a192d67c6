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
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import harness
from harness import HOME, Entry, log
from imapclient import IMAPClient

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
        one_way_ms: float = 10.0, naive_sample: int = 300, relay: bool = True
        ) -> dict[str, object]:
    """The backlog with ``2 * one_way_ms`` of round trip; ``{"skipped": why}`` when impossible.

    Without netem (and with ``relay``), the same run through :mod:`delay`'s userspace relay is
    added under ``"relay"``, labelled as the emulation it is.
    """
    why = _cannot()
    if why is None:
        pair = Pair()
        try:
            try:
                pair.create()
            except RuntimeError as exc:
                why = f"cannot create the namespaces and the veth pair: {exc}"
            else:
                try:
                    if one_way_ms > 0:
                        pair.delay(one_way_ms)
                except RuntimeError as exc:
                    why = f"the kernel refuses netem ({exc}): it was built without sch_netem"
                else:
                    return _over_netem(work, entries, baseline, pair, one_way_ms, naive_sample)
        finally:
            pair.remove()
    log(f"netem: skipped: {why}")
    result: dict[str, object] = {"skipped": why}
    if relay and one_way_ms > 0:
        result["relay"] = _over_relay(work, entries, baseline, one_way_ms, naive_sample)
    return result


def _cannot() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and tc)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing: apt-get install -y iproute2"
    return None


def _over_netem(work: Path, entries: list[Entry], baseline: dict[str, object] | None,
                pair: Pair, one_way_ms: float, naive_sample: int) -> dict[str, object]:
    with dovecot_in(pair) as server:
        rtt = pair.round_trip_ms(server.port)
        log(f"netem: round trip {rtt:.2f} ms between the namespaces")
        folder = work / "netem"
        deployment = harness.bench_deploy(server, folder)
        result = _backlog(folder, server, deployment, deployment.account_of(HOME), entries,
                          baseline, naive_sample, pair.client, "netem")
        return {"method": "netem", "round_trip_ms": round(rtt, 2),
                "one_way_delay_ms": one_way_ms, **result}


def _over_relay(work: Path, entries: list[Entry], baseline: dict[str, object] | None,
                one_way_ms: float, naive_sample: int) -> dict[str, object]:
    folder = work / "relay"
    with harness.dovecot() as server:
        port = harness.free_port()
        relay = subprocess.Popen([sys.executable, str(harness.HERE / "delay.py"), "--listen",
                                  str(port), "--to", str(server.port), "--one-way-ms",
                                  str(one_way_ms)], stdout=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)
        try:
            assert relay.stdout is not None
            relay.stdout.readline()  # "ready"
            deployment = harness.deploy(server, folder, imap={**harness.IMAP_SETTINGS,
                                                              "port": port})
            direct = deployment.account_of(HOME)
            through = dataclasses.replace(direct, port=port)
            rtt = _noop_ms(through)
            log(f"relay: round trip {rtt:.1f} ms through the userspace relay")
            result = _backlog(folder, server, deployment, through, entries, baseline,
                              naive_sample, lambda command: command, "relay")
        finally:
            relay.kill()
            relay.wait()
    return {"method": "userspace relay (bench/delay.py), not netem", "round_trip_ms": round(rtt, 1),
            "one_way_delay_ms": one_way_ms, **result}


def _noop_ms(account: harness.ImapAccount) -> float:
    """The median time of an IMAP NOOP (one round trip)."""
    with IMAPClient(account.host, port=account.port, ssl=False, timeout=30) as imap:
        imap.login(account.user, account.password)
        times = []
        for _ in range(9):
            start = time.perf_counter()
            imap.noop()
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)[len(times) // 2]


def _backlog(folder: Path, server: DovecotServer, deployment: harness.Deployment,
             account: harness.ImapAccount, entries: list[Entry],
             baseline: dict[str, object] | None, naive_sample: int,
             wrap: Callable[[list[str]], list[str]], label: str) -> dict[str, object]:
    """The naive reader on a sample, then ``triage run --once`` on the whole backlog."""
    harness.fill_maildir(server, deployment.account_of(HOME), entries)
    secret = deployment.config_path.parent / f"imap-{HOME}.secret"
    log(f"{label}: naive reader on the first {naive_sample} messages …")
    naive = harness.measured(wrap(harness.naive_command(account, secret, limit=naive_sample)),
                             folder / "naive.log")
    read = json.loads(naive.stdout.strip().splitlines()[-1])
    naive_rate = read["messages"] / naive.seconds
    log(f"{label}: naive reader {naive_rate:.0f} messages/s")
    log(f"{label}: triage run --once …")
    tri = harness.measured(wrap(harness.triage_command(deployment)), folder / "triage.log")
    counts = harness.folder_counts(server, deployment.account_of(HOME))
    if tri.returncode != 0 or counts.get("INBOX", -1) != 0:
        raise SystemExit(f"triage over the {label} failed ({tri.returncode}, INBOX "
                         f"{counts.get('INBOX')}): "
                         + (folder / "triage.log").read_text()[-2000:])
    rate = len(entries) / tri.seconds
    result: dict[str, object] = {
        "messages": len(entries),
        "naive": {"messages": read["messages"], "seconds": round(naive.seconds, 2),
                  "rate": round(naive_rate, 1)},
        "triage": {"seconds": round(tri.seconds, 2), "rate": round(rate, 1),
                   "max_rss_mb": round(tri.max_rss_mb, 1)},
        "ratio": round(rate / naive_rate, 2),
    }
    base = (baseline or {}).get("triage")
    if isinstance(base, dict):
        result["rate_vs_loopback"] = round(rate / float(base["rate"]), 2)
    log(f"{label}: triage {rate:.0f} messages/s ({tri.seconds:.0f} s)"
        + (f", {result['rate_vs_loopback']:.2f} of the loopback rate"
           if "rate_vs_loopback" in result else "")
        + f"; {rate / naive_rate:.1f} times the naive reader's")
    return result
