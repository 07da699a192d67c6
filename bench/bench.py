"""Benchmarks of ``triage run`` against a real Dovecot: backlog, latency, memory, round trips.

Run everything (about 7 minutes on 2 cores, one more the first time, to generate the mail;
see ``bench/README.md``)::

    python bench/bench.py all

or one run: ``backlog``, ``latency``, ``memory``, ``netem``, ``profile``. Each prints its
figures and writes them to ``WORKDIR/results-RUN.json``; ``--keep`` keeps the mailboxes,
stores and logs.

- backlog: 10,000 messages wait in a mailbox. The naive reader (``bench/naive.py``) reads them all
  first, read-only; then ``triage run --once`` starts cold (new process, empty store) and
  triages them all. Both are timed from start to exit, with their peak RSS.
- latency: ``triage run`` idles (IDLE) while messages are appended at 10 per second for a
  minute; for each, the time from its APPEND to its committed ticket (and draft).
- memory: the peak RSS of ``triage run --once`` for backlogs of 1,000 and 10,000 messages.
- netem: the backlog on loopback, then again with 20 ms of round trip added between the daemon
  and Dovecot (network namespaces, a veth pair and ``tc netem``), when the kernel has netem;
  else through a userspace relay that delays every chunk (``bench/delay.py``), reported as
  such. Both in the same run, so that their ratio is measured side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import generate
import harness
from harness import (
    HOME,
    Entry,
    bench_deploy,
    corpus,
    fill_maildir,
    folder_counts,
    log,
    measured,
    naive_command,
    percentile,
    store_path,
    triage_command,
)
from imapclient import IMAPClient

from triage.testing import DovecotServer

SEED = 1
LATENCY_FIRST = 1_000_000  # the latency run's messages come from further in the corpus


def secret_file(deployment: harness.Deployment) -> Path:
    return deployment.config_path.parent / f"imap-{HOME}.secret"


def tickets(path: Path) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        out = dict(db.execute("select action, count(*) from tickets group by action").fetchall())
        out["drafts"] = db.execute("select count(*) from drafts").fetchone()[0]
        out["transfers"] = db.execute("select count(*) from transfers").fetchone()[0]
        out["transfers_done"] = db.execute(
            "select count(*) from transfers where done_at is not null").fetchone()[0]
        return out
    finally:
        db.close()


# -- backlog ----------------------------------------------------------------------------------

def backlog(work: Path, server: DovecotServer, entries: list[Entry], naive: bool = True,
            wrap: list[str] | None = None, label: str = "backlog",
            profile: Path | None = None) -> dict[str, object]:
    """The naive reader, then ``triage run --once``, on one mailbox of ``len(entries)``."""
    folder = work / label
    deployment = bench_deploy(server, folder)
    account = deployment.account_of(HOME)
    started = time.monotonic()
    fill_maildir(server, account, entries)
    log(f"{label}: {len(entries)} messages ({sum(e.size for e in entries) / 1e9:.2f} GB) in "
        f"the INBOX of {account.user} ({time.monotonic() - started:.0f} s)")
    result: dict[str, object] = {"messages": len(entries),
                                 "bytes": sum(e.size for e in entries)}
    if naive:
        log(f"{label}: naive reader …")
        run = measured(naive_command(account, secret_file(deployment), wrap=wrap),
                       folder / "naive.log")
        if run.returncode != 0:
            raise SystemExit(f"naive reader failed: {(folder / 'naive.log').read_text()[-2000:]}")
        read = json.loads(run.stdout.strip().splitlines()[-1])
        if read["messages"] != len(entries):
            raise SystemExit(f"naive reader read {read['messages']} of {len(entries)} messages")
        result["naive"] = {"seconds": round(run.seconds, 2),
                           "rate": round(len(entries) / run.seconds, 1),
                           "max_rss_mb": round(run.max_rss_mb, 1),
                           "bytes_read": read["bytes"]}
        log(f"{label}: naive reader {len(entries) / run.seconds:.0f} messages/s, "
            f"{run.seconds:.1f} s, peak RSS {run.max_rss_mb:.0f} MB")
    log(f"{label}: triage run --once …")
    command = triage_command(deployment, wrap=wrap)
    if profile is not None:  # the same process under the sampling profiler
        at = command.index("-m")
        command[at:at] = ["-m", "pyinstrument", "--interval", "0.002", "-r", "session", "-o",
                          str(profile.with_suffix(".pyisession"))]
    run = measured(command, folder / "triage.log")
    if profile is not None:
        for renderer, suffix in (("text", ".txt"), ("html", ".html")):
            subprocess.run([sys.executable, "-m", "pyinstrument", "--load",
                            str(profile.with_suffix(".pyisession")), "-r", renderer, "-o",
                            str(profile.with_suffix(suffix))], check=False)
    if run.returncode != 0:
        raise SystemExit(f"triage run --once failed ({run.returncode}): {run.stdout}\n"
                         + (folder / "triage.log").read_text()[-3000:])
    counts = folder_counts(server, account)
    made = tickets(store_path(deployment))
    total = sum(v for k, v in made.items() if not k.startswith(("drafts", "transfers")))
    if counts.get("INBOX", -1) != 0 or total != len(entries):
        raise SystemExit(f"triage left {counts.get('INBOX')} messages in INBOX and made "
                         f"{total} tickets for {len(entries)} messages")
    result["triage"] = {"seconds": round(run.seconds, 2),
                        "rate": round(len(entries) / run.seconds, 1),
                        "max_rss_mb": round(run.max_rss_mb, 1),
                        "tickets": made, "summary": run.stdout.strip().splitlines()}
    log(f"{label}: triage {len(entries) / run.seconds:.0f} messages/s, {run.seconds:.1f} s, "
        f"peak RSS {run.max_rss_mb:.0f} MB; tickets {made}")
    if naive:
        ratio = (len(entries) / run.seconds) / result["naive"]["rate"]  # type: ignore[index]
        result["ratio"] = round(ratio, 2)
        log(f"{label}: ratio triage / naive = {ratio:.2f}")
    return result


# -- latency ----------------------------------------------------------------------------------

def latency(work: Path, server: DovecotServer, entries: list[Entry], rate: float = 10.0
            ) -> dict[str, object]:
    """``triage run`` on IDLE; APPEND at ``rate`` per second; APPEND → committed ticket."""
    folder = work / "latency"
    deployment = bench_deploy(server, folder)
    account = deployment.account_of(HOME)
    messages = [(e, generate.crlf(e.path.read_bytes())) for e in entries]
    watcher = harness.StoreWatcher(store_path(deployment))
    watcher.start()
    log_path = folder / "daemon.log"
    with open(log_path, "wb") as err:
        proc = subprocess.Popen(triage_command(deployment, once=False), stdout=err, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=harness.ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    appended: dict[str, tuple[float, float]] = {}
    try:
        # Ready: the first pass has run and the IDLE connection is up.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log_path.read_text("utf-8", "replace")
            if proc.poll() is not None:
                raise SystemExit(f"triage run exited: {text[-2000:]}")
            if _idle_ready(server, account):
                break
            time.sleep(0.1)
        else:
            raise SystemExit("the daemon's IDLE connection did not come up within 60 s")
        time.sleep(1.0)
        log(f"latency: appending {len(messages)} messages at {rate:g}/s …")
        with IMAPClient(account.host, port=account.port, ssl=False, timeout=120) as imap:
            imap.login(account.user, account.password)
            start = time.monotonic()
            for k, (entry, raw) in enumerate(messages):
                due = start + k / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                sent = time.monotonic()
                imap.append("INBOX", raw)
                appended[entry.message_id] = (sent, time.monotonic())
        log("latency: waiting for the last tickets …")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(m in watcher.seen for m in appended):
            time.sleep(0.05)
        rss = harness.peak_rss_mb(proc.pid)
    finally:
        harness.stop_process(proc)
        watcher.stopping.set()
        watcher.join(5)
    missing = [m for m in appended if m not in watcher.seen]
    delays = {m: watcher.seen[m][0] - appended[m][0] for m in appended if m in watcher.seen}
    drafts = [d for m, d in delays.items() if watcher.seen[m][1] == "draft"]
    without = [m for m in delays if watcher.seen[m][1] == "draft" and watcher.seen[m][2] == 0]
    if without:
        raise SystemExit(f"{len(without)} draft tickets were committed without their draft")
    values = list(delays.values())
    by_size = sorted(((e.size, delays.get(e.message_id)) for e, _ in messages), reverse=True)
    result = {
        "appended": len(appended), "rate_per_s": rate,
        "append_seconds": round(max(a[1] for a in appended.values())
                                - min(a[0] for a in appended.values()), 1),
        "missing": len(missing),
        "all": _stats(values), "drafts": _stats(drafts),
        "largest": [{"bytes": size, "seconds": round(d, 3) if d is not None else None}
                    for size, d in by_size[:3]],
        "daemon_max_rss_mb": round(rss, 1),
    }
    stats = result["all"]
    log(f"latency: p50 {stats['p50']:.3f} s, p95 {stats['p95']:.3f} s, p99 {stats['p99']:.3f} s, "
        f"max {stats['max']:.3f} s over {len(values)} messages ({len(missing)} missing)")
    return result


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"count": len(values), "p50": round(percentile(values, 50), 3),
            "p95": round(percentile(values, 95), 3), "p99": round(percentile(values, 99), 3),
            "max": round(max(values), 3), "mean": round(sum(values) / len(values), 3)}


def _idle_ready(server: DovecotServer, account: harness.ImapAccount) -> bool:
    """True once the account has a connection in IDLE (``doveadm who`` lists its sessions)."""
    try:
        out = server.doveadm("who", "-1", account.user)
    except Exception:
        return False
    return out.count("imap") >= 2  # the worker's connection and the IDLE watcher's


def criteria(results: dict[str, Any]) -> dict[str, tuple[object, bool]]:
    """The issue's requirements, for the runs that were made: value and whether it holds."""
    out: dict[str, tuple[object, bool]] = {}
    backlog_ = results.get("backlog") or {}
    if "ratio" in backlog_:
        out["backlog ratio triage / naive >= 1.0"] = (backlog_["ratio"], backlog_["ratio"] >= 1.0)
    latency_ = (results.get("latency") or {}).get("all") or {}
    if latency_:
        out["latency p95 < 1 s"] = (latency_["p95"], latency_["p95"] < 1.0)
        out["latency p99 < 2 s"] = (latency_["p99"], latency_["p99"] < 2.0)
    netem_ = results.get("netem") or {}
    for method in ("netem", "relay"):
        delayed = netem_ if method == "netem" else netem_.get("relay") or {}
        if "rate_vs_loopback" in delayed:
            out[f"20 ms round trip ({method}) >= 0.5 x loopback"] = (
                delayed["rate_vs_loopback"], delayed["rate_vs_loopback"] >= 0.5)
    memory = results.get("memory") or {}
    if memory:
        big = backlog_["triage"]["max_rss_mb"]
        out["peak RSS of the large backlog < 250 MB"] = (big, big < 250)
        out["peak RSS within 20 % of the small backlog's"] = (
            f"{memory['growth'] * 100:+.0f} %", abs(memory["growth"]) <= 0.20)
    return out


# -- the command line -------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", choices=("all", "backlog", "latency", "memory", "netem",
                                        "profile"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/triage-bench"),
                        help="where the corpus, mailboxes and stores go (needs ~10 GB)")
    parser.add_argument("--count", type=int, default=10_000, help="messages in the backlog")
    parser.add_argument("--small", type=int, default=1_000, help="the memory run's small backlog")
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=10.0, help="appends per second")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--netem-delay-ms", type=float, default=10.0,
                        help="delay added on each side of the veth pair (0: none, to check "
                             "the namespaces alone)")
    parser.add_argument("--keep", action="store_true", help="keep mailboxes, stores and logs")
    parser.add_argument("--keep-corpus", action="store_true",
                        help="keep the generated corpus for the next run")
    args = parser.parse_args(argv)

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    need = int(args.count * 430_000 * 1.2)
    if free < need:
        raise SystemExit(f"{work}: {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed; "
                         "choose another --workdir")
    runs = work / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir()
    results: dict[str, object] = {"machine": harness.machine(), "started": time.strftime(
        "%Y-%m-%d %H:%M:%S %z"), "count": args.count, "seed": args.seed}
    began = time.monotonic()
    try:
        log(f"corpus: {args.count} messages, seed {args.seed} …")
        entries = corpus(work / "corpus", args.count, args.seed)
        results["corpus"] = generate.summary(work / "corpus", args.count)
        with contextlib.ExitStack() as stack:
            if args.run != "netem":  # that one starts its own
                server = stack.enter_context(harness.dovecot())
                log(f"Dovecot on {server.host}:{server.port} ({server.root})")
            if args.run == "profile":
                results["profile"] = backlog(runs, server, entries, naive=False,
                                             label="profile", profile=work / "profile.txt")
                log(f"profile: {work / 'profile.txt'} and {work / 'profile.html'}")
            if args.run in ("all", "backlog", "memory"):
                results["backlog"] = backlog(runs, server, entries, naive=args.run != "memory")
            if args.run in ("all", "memory"):
                small = backlog(runs, server, entries[: args.small], naive=False,
                                label="backlog-small")
                big = results["backlog"]["triage"]["max_rss_mb"]  # type: ignore[index]
                little = small["triage"]["max_rss_mb"]  # type: ignore[index]
                results["memory"] = {f"{args.small}": little, f"{args.count}": big,
                                     "growth": round(big / little - 1, 3),
                                     "small_run": small}
                log(f"memory: peak RSS {little:.0f} MB for {args.small}, {big:.0f} MB for "
                    f"{args.count} ({(big / little - 1) * 100:+.0f} %)")
            if args.run in ("all", "latency"):
                n = int(args.latency_seconds * args.rate)
                stream = corpus(work / "corpus-latency", n, args.seed, first=LATENCY_FIRST)
                results["latency"] = latency(runs, server, stream, args.rate)
        if args.run in ("all", "netem"):
            import netem

            if "backlog" not in results:  # the loopback figure, side by side in the same run
                with harness.dovecot() as server:
                    results["backlog"] = backlog(runs, server, entries)
            results["netem"] = netem.run(runs, entries, results.get(  # type: ignore[arg-type]
                "backlog"), one_way_ms=args.netem_delay_ms)
        results["criteria"] = criteria(results)
        for name, (value, ok) in results["criteria"].items():  # type: ignore[attr-defined]
            log(f"{'PASS' if ok else 'FAIL'}  {name}: {value}")
    finally:
        path = harness.finish_run(results, work, args.run, began, runs, args.keep)
        log(f"results in {path} ({results['seconds']:.0f} s in all)")
        if not args.keep_corpus:
            shutil.rmtree(work / "corpus", ignore_errors=True)
            shutil.rmtree(work / "corpus-latency", ignore_errors=True)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
