"""Many mailboxes: one ``triage run`` watching 100 of them, three sharing 300 on PostgreSQL.

    python bench/mailboxes.py many        # one daemon, 100 department mailboxes, SQLite
    python bench/mailboxes.py instances   # three daemons, 300 mailboxes, PostgreSQL
    python bench/mailboxes.py all

- many: the configuration lists 100 departments (real codes and names from
  ``triage/data/communes.json``, written into the departments YAML as an admin would) and their
  mailboxes on one private Dovecot. The daemon starts; once every mailbox has had its first
  pass and things settle, its own CPU time (``/proc/PID/stat``) is read over ``--idle-seconds``
  with no mail coming; then a trickle of messages (``--rate`` per second for
  ``--trickle-seconds``) is appended, each to the next mailbox of a shuffled round over all
  100, and the time from the start of each APPEND to its committed ticket (and draft) is noted
  (the store is polled every 5 ms, as in ``bench.py latency``). Printed: p50/p95/p99, peak RSS
  (``VmHWM``), idle CPU as a share of one core, the daemon's threads and its IMAP connections.
- instances: 300 mailboxes (the 100 departments' and 200 more), three daemons on one
  PostgreSQL database; how many mailboxes each holds once the leases settle, their idle CPU,
  then one is SIGKILLed and the time until the two others hold all 300, and how many each.

Figures go to ``WORKDIR/results-mailboxes-RUN.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import generate
import harness
from harness import Entry, corpus, log, percentile, store_path, triage_command
from imapclient import IMAPClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from triage.store import Store
from triage.testing import DovecotServer
from triage.testing.intake import Deployment, deploy
from triage.testing.postgres import temporary_database

SEED = 1
TRICKLE_FIRST = 2_000_000  # the trickle's messages come from further in the corpus
#: The shipped IMAP settings (5 s poll, IDLE, 30 s leases); only the server is the bench's.
IMAP = {"poll_interval": 5.0, "timeout": 60, "max_backoff": 30}
CODE_PATTERN = r"^(\d{2}|2A|2B|97\d)$"


def departments(count: int) -> list[dict[str, Any]]:
    """``count`` departments as the YAML lists them, from the data's real codes and names."""
    import re

    data = json.loads((harness.ROOT / "triage" / "data" / "communes.json").read_text("utf-8"))
    out = []
    for code, name in data["departments"]:
        if not re.match(CODE_PATTERN, code):
            continue
        mailbox = generate.mailbox_of(code)
        out.append({"code": code, "name": name, "mailbox": mailbox, "extra_sender_domains": [],
                    "signature": "Pôle de gestion publique – Service SPL PES\n"
                                 f"Direction départementale des Finances publiques ({name})\n",
                    "contact": [f"Courriel : {mailbox}"]})
        if len(out) == count:
            return out
    raise SystemExit(f"the data has only {len(out)} departments")


def deploy_many(server: DovecotServer, folder: Path, mailboxes: int, imap: dict[str, Any],
                store_url: str | None = None) -> Deployment:
    """Up to 100 department mailboxes, then helpdesk mailboxes without a department."""
    listed = departments(min(mailboxes, 100))
    return deploy(server, folder, codes=tuple(d["code"] for d in listed), imap=imap,
                  store_url=store_url, extra={"departments": listed},
                  extra_mailboxes=mailboxes - len(listed))


def start_daemon(deployment: Deployment, log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as err:
        return subprocess.Popen(triage_command(deployment, once=False), stdout=err, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=harness.ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from ``/proc/PID/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def connections(server: DovecotServer) -> int:
    """IMAP sessions open on the server (``doveadm who -1``: one line each, after a header)."""
    try:
        return max(0, len(server.doveadm("who", "-1").strip().splitlines()) - 1)
    except Exception:
        return -1


def idle_cpu(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU over ``seconds`` of wall clock, as a share of one core (0..1)."""
    before = [cpu_seconds(p) for p in pids]
    start = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - start
    return [round((cpu_seconds(p) - b) / wall, 4) for p, b in zip(pids, before, strict=True)]


def wait(condition: Any, timeout: float, what: str, step: float = 0.2) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"not within {timeout:.0f} s: {what}")
        time.sleep(step)
    return time.monotonic() - start


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"count": len(values), "p50": round(percentile(values, 50), 3),
            "p95": round(percentile(values, 95), 3), "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3)}


# -- one instance, many mailboxes -------------------------------------------------------------

def many(work: Path, entries: list[Entry], mailboxes: int, idle_seconds: float, rate: float,
         settle: float) -> dict[str, object]:
    folder = work / "many"
    with harness.dovecot() as server:
        deployment = deploy_many(server, folder, mailboxes, IMAP)
        db = store_path(deployment)
        proc = start_daemon(deployment, folder / "daemon.log")
        result: dict[str, object] = {"mailboxes": mailboxes}
        try:
            def polled() -> bool:
                if proc.poll() is not None:
                    raise SystemExit("triage run exited: "
                                     + (folder / "daemon.log").read_text()[-2000:])
                return _polled(db) >= mailboxes
            started = wait(polled, 300, f"a first pass on each of {mailboxes} mailboxes")
            log(f"many: every mailbox had its first pass after {started:.1f} s; "
                f"settling {settle:g} s …")
            result["first_passes_seconds"] = round(started, 1)
            time.sleep(settle)
            result["threads"], result["imap_connections"] = threads(proc.pid), connections(server)
            log(f"many: idle CPU over {idle_seconds:g} s …")
            (share,) = idle_cpu([proc.pid], idle_seconds)
            result["idle_cpu_share_of_one_core"] = share
            result["rss_mb_idle"] = round(harness.peak_rss_mb(proc.pid), 1)
            log(f"many: idle CPU {share * 100:.2f} % of one core; {result['threads']} threads, "
                f"{result['imap_connections']} IMAP connections")
            result["trickle"] = trickle(server, deployment, db, entries, rate)
            result["max_rss_mb"] = round(harness.peak_rss_mb(proc.pid), 1)
            log(f"many: peak RSS {result['max_rss_mb']:.0f} MB")
        finally:
            harness.stop_process(proc)
    return result


def _polled(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("select count(*) from mailbox_state where last_poll_at is not "
                               "null").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def trickle(server: DovecotServer, deployment: Deployment, db: Path, entries: list[Entry],
            rate: float) -> dict[str, object]:
    """APPEND each message to the next mailbox of a shuffled round; APPEND → committed ticket."""
    accounts = list(deployment.accounts.values())
    order: list[int] = []
    rng = random.Random(SEED)
    while len(order) < len(entries):
        round_ = list(range(len(accounts)))
        rng.shuffle(round_)
        order += round_
    watcher = harness.StoreWatcher(db)
    watcher.start()
    clients: dict[str, IMAPClient] = {}
    appended: dict[str, float] = {}
    log(f"many: appending {len(entries)} messages at {rate:g}/s over {len(accounts)} "
        "mailboxes …")
    try:
        start = time.monotonic()
        for k, entry in enumerate(entries):
            account = accounts[order[k]]
            client = clients.get(account.user)
            if client is None:
                client = IMAPClient(account.host, port=account.port, ssl=False, timeout=60)
                client.login(account.user, account.password)
                clients[account.user] = client
            raw = generate.crlf(entry.path.read_bytes())
            pause = start + k / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            appended[entry.message_id] = time.monotonic()
            client.append("INBOX", raw)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(m in watcher.seen for m in appended):
            time.sleep(0.05)
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.logout()
        watcher.stopping.set()
        watcher.join(5)
    delays = {m: watcher.seen[m][0] - t for m, t in appended.items() if m in watcher.seen}
    drafts = [d for m, d in delays.items() if watcher.seen[m][1] == "draft"]
    out = {"appended": len(appended), "rate_per_s": rate,
           "mailboxes_used": len(set(order[:len(entries)])),
           "missing": len(appended) - len(delays), "all": stats(list(delays.values())),
           "drafts": stats(drafts)}
    s = out["all"]
    log(f"many: latency p50 {s['p50']:.3f} s, p95 {s['p95']:.3f} s, p99 {s['p99']:.3f} s, "  # type: ignore[index]
        f"max {s['max']:.3f} s ({out['missing']} missing)")  # type: ignore[index]
    return out


# -- three instances, 300 mailboxes -----------------------------------------------------------

def instances(work: Path, mailboxes: int, count: int, lease: float, idle_seconds: float
              ) -> dict[str, object]:
    folder = work / "instances"
    with temporary_database() as url, harness.dovecot() as server:
        deployment = deploy_many(server, folder, mailboxes, {**IMAP, "lease_seconds": lease},
                                 store_url=url)
        # The schema first, as `triage db upgrade` does before instances start: three of them
        # starting on an empty database would race to create it.
        Store.open(deployment.settings).dispose()
        engine = create_engine(url)
        procs = [start_daemon(deployment, folder / f"daemon-{i}.log") for i in range(count)]
        result: dict[str, object] = {"mailboxes": mailboxes, "instances": count,
                                     "lease_seconds": lease}
        try:
            def held() -> dict[int, int]:
                for p in procs:
                    if p.poll() is not None and p.returncode != -signal.SIGKILL:
                        raise SystemExit(f"an instance exited ({p.returncode}); logs in {folder}")
                try:
                    with engine.connect() as c:
                        rows = c.execute(text(
                            "select owner, count(*) from mailbox_leases where owner is not "
                            "null and expires_at > now() group by owner")).all()
                except ProgrammingError:  # the first daemon has not made the schema yet
                    return {}
                return {int(owner.split(":")[1]): n for owner, n in rows}

            def shares(alive: list[subprocess.Popen[bytes]]) -> list[int]:
                now = held()
                return [now.get(p.pid, 0) for p in alive]

            settled = _settle(lambda: shares(procs), mailboxes, lease)
            result["settled_seconds"], result["held"] = settled
            result["imap_connections"] = connections(server)
            log(f"instances: {result['held']} mailboxes each after {settled[0]:.1f} s; "
                f"{result['imap_connections']} IMAP connections")
            result["idle_cpu_share_of_one_core"] = idle_cpu([p.pid for p in procs],
                                                            idle_seconds)
            log(f"instances: idle CPU {result['idle_cpu_share_of_one_core']} of one core")
            victim, alive = procs[0], procs[1:]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            taken = wait(lambda: sum(shares(alive)) >= mailboxes, 4 * lease + 60,
                         "the others taking the killed instance's mailboxes over", step=0.1)
            result["takeover_seconds"], result["held_after_kill"] = (round(taken, 1),
                                                                     shares(alive))
            log(f"instances: one SIGKILLed, the others hold all {mailboxes} after "
                f"{taken:.1f} s: {result['held_after_kill']}")
        finally:
            for p in procs:
                harness.stop_process(p)
            engine.dispose()
    return result


def _settle(shares: Any, mailboxes: int, lease: float) -> tuple[float, list[int]]:
    """Wait until every mailbox is held and the counts stay put for a whole lease period."""
    start = time.monotonic()
    last, since = None, time.monotonic()
    while time.monotonic() - start < 300:
        now = shares()
        if now != last:
            last, since = now, time.monotonic()
        elif sum(now) >= mailboxes and time.monotonic() - since >= lease:
            return round(since - start, 1), now
        time.sleep(0.2)
    raise SystemExit(f"the leases did not settle within 300 s: {last}")


# -- the command line -------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", choices=("all", "many", "instances"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/triage-bench"))
    parser.add_argument("--mailboxes", type=int, default=100, help="the many run's mailboxes")
    parser.add_argument("--shared", type=int, default=300, help="the instances run's mailboxes")
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--lease", type=float, default=15.0,
                        help="imap.lease_seconds of the instances run")
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds between the first passes and the idle measure")
    parser.add_argument("--rate", type=float, default=2.0, help="trickle appends per second")
    parser.add_argument("--trickle-seconds", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep mailboxes, stores and logs")
    args = parser.parse_args(argv)

    work = args.workdir
    runs = work / "runs-mailboxes"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    results: dict[str, object] = {"machine": harness.machine(),
                                  "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    began = time.monotonic()
    try:
        if args.run in ("all", "many"):
            n = int(args.rate * args.trickle_seconds)
            entries = corpus(work / "corpus-mailboxes", n, SEED, first=TRICKLE_FIRST)
            results["many"] = many(runs, entries, args.mailboxes, args.idle_seconds, args.rate,
                                   args.settle)
        if args.run in ("all", "instances"):
            results["instances"] = instances(runs, args.shared, args.instances, args.lease,
                                             min(args.idle_seconds, 30.0))
    finally:
        path = harness.finish_run(results, work, f"mailboxes-{args.run}", began, runs, args.keep)
        log(f"results in {path}")
    print(json.dumps(results, indent=2, ensure_ascii=False))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
