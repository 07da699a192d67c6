"""What the benchmark runs share: the Dovecot, mailboxes filled from the corpus, measured processes.

The Dovecot is :class:`triage.testing.DovecotServer` (a private instance on a loopback port).
A backlog is put in place as a delivery agent would: message files in the account's maildir,
named with their size (``S=``) and their size with CRLF line ends (``W=``), as Dovecot names the
files it writes itself. They are hard links to the corpus files (no copy of the gigabytes),
owned by the mail user, so that Dovecot moves them between folders by linking as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import generate  # noqa: E402

from triage.testing import DovecotServer  # noqa: E402
from triage.testing.dovecot import ImapAccount, free_port  # noqa: E402
from triage.testing.intake import Deployment, deploy  # noqa: E402

__all__ = ["Deployment", "DovecotServer", "ImapAccount", "deploy", "free_port"]

HOME = "38"
HOME_MAILBOX = generate.mailbox_of(HOME)
#: The daemon's settings in the benchmarks: the shipped defaults (batch size, full-fetch limit,
#: IDLE, a 5 s poll); only the server is the benchmark's. Except the mailbox lease: `run --once`
#: takes its leases at the start and does not renew them, so with the default 30 s the mailboxes
#: after a longer pass (here the 73 and 74 ones, after the 38 backlog) would be skipped, and
#: their copies to Transféré with them. The whole pipeline is what is measured.
IMAP_SETTINGS = {"poll_interval": 5.0, "timeout": 60, "max_backoff": 30, "lease_seconds": 3600}


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- the corpus -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    index: int
    path: Path
    kind: str
    size: int
    attachment: int
    message_id: str
    crlf_size: int


def corpus(folder: Path, count: int, seed: int, first: int = 0) -> list[Entry]:
    """Messages ``first`` .. ``first + count - 1`` of corpus ``seed`` (generated if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    generate.write_corpus(folder, count, seed, HOME, first=first)
    entries = []
    for line in (folder / "manifest.tsv").read_text().splitlines()[1:]:
        f = line.split("\t")
        i = int(f[0])
        if first <= i < first + count:
            entries.append(Entry(i, folder / f[1], f[2], int(f[3]), int(f[4]), f[5], int(f[6])))
    if len(entries) != count:
        raise SystemExit(f"{folder}: {len(entries)} messages instead of {count}")
    return entries


def mail_owner() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    pw = pwd.getpwnam("dovecot")
    return pw.pw_uid, pw.pw_gid


def fill_maildir(server: DovecotServer, account: ImapAccount, entries: list[Entry]) -> None:
    """Put ``entries`` in the account's INBOX as a delivery agent would, then let Dovecot index."""
    uid, gid = mail_owner()
    home = server.mail_dir / account.user
    for sub in ("", "cur", "new", "tmp"):
        (home / sub).mkdir(exist_ok=True)
        os.chown(home / sub, uid, gid)
    stamp = int(time.time())
    for e in entries:
        name = f"{stamp}.M{e.index}P{os.getpid()}.bench,S={e.size},W={e.crlf_size}:2,"
        target = home / "cur" / name
        if e.path.stat().st_uid != uid:
            os.chown(e.path, uid, gid)
        try:
            os.link(e.path, target)
        except OSError:  # another file system: copy
            shutil.copyfile(e.path, target)
            os.chown(target, uid, gid)
    count = folder_counts(server, account).get("INBOX", 0)  # Dovecot indexes the folder here
    if count != len(entries):
        raise SystemExit(f"Dovecot sees {count} messages in INBOX, {len(entries)} were written")


def folder_counts(server: DovecotServer, account: ImapAccount) -> dict[str, int]:
    """Messages per folder (names with ``/``), read by ``doveadm`` from the mail store itself.

    No IMAP: this works as well when the server listens in another network namespace.
    """
    out = server.doveadm("-f", "tab", "mailbox", "status", "-u", account.user, "messages", "*")
    counts = {}
    for line in out.splitlines()[1:]:
        name, _, messages = line.rpartition("\t")
        counts[name.replace(".", "/")] = int(messages)
    return counts


def bench_deploy(server: DovecotServer, folder: Path) -> Deployment:
    """The shipped configuration with the five department mailboxes on ``server``."""
    return deploy(server, folder, imap=IMAP_SETTINGS)


def store_path(deployment: Deployment) -> Path:
    return Path(deployment.store_url.removeprefix("sqlite:///"))


# -- measured processes ----------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    seconds: float
    max_rss_mb: float
    returncode: int
    stdout: str


def measured(command: list[str], log_path: Path, timeout: float = 3600) -> Measured:
    """Run ``command`` to its end; wall time from start to exit and its peak resident memory.

    The peak is read by GNU ``time`` (``%M``, the kernel's ``ru_maxrss`` of that one process).
    It cannot be read here with ``wait4``: the kernel carries the parent's high-water mark
    over a fork and exec, so the child would inherit this process's peak.
    """
    gnu_time = shutil.which("time", path="/usr/bin:/bin") or shutil.which("time")
    if gnu_time is None:
        raise SystemExit("GNU time is needed to read peak memory: apt-get install -y time")
    report = log_path.with_suffix(".rss")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as err:
        start = time.monotonic()
        proc = subprocess.Popen([gnu_time, "-f", "%M", "-o", str(report), *command],
                                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                env=env, cwd=ROOT)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        seconds = time.monotonic() - start
    lines = report.read_text().split()
    max_rss_kb = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    return Measured(seconds, max_rss_kb / 1024, proc.returncode, out.decode("utf-8", "replace"))


def triage_command(deployment: Deployment, once: bool = True, wrap: list[str] | None = None
                   ) -> list[str]:
    command = [sys.executable, "-m", "triage", "run", "--log-json", "--config",
               str(deployment.config_path)]
    if once:
        command.insert(4, "--once")
    return [*(wrap or []), *command]


def naive_command(account: ImapAccount, secret: Path, limit: int = 0,
                  wrap: list[str] | None = None) -> list[str]:
    command = [sys.executable, str(HERE / "naive.py"), "--host", account.host, "--port",
               str(account.port), "--user", account.user, "--password-file", str(secret)]
    if limit:
        command += ["--limit", str(limit)]
    return [*(wrap or []), *command]


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory so far of a running process (``VmHWM``)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# -- the store, read while the daemon writes --------------------------------------------------

class StoreWatcher(threading.Thread):
    """Polls the SQLite store and notes when each ticket (with its draft) became visible.

    The store runs in WAL mode: a reader sees only committed transactions, so the first time a
    ticket is seen is (to the polling step) the time it was committed.
    """

    def __init__(self, path: Path, step: float = 0.005) -> None:
        super().__init__(name="store-watcher", daemon=True)
        self.path, self.step = path, step
        self.seen: dict[str, tuple[float, str, int]] = {}  # message_id -> (when, action, drafts)
        self.stopping = threading.Event()
        self.last_id = 0
        self.error: str | None = None

    def run(self) -> None:
        while not self.path.exists() and not self.stopping.is_set():
            time.sleep(self.step)
        db: sqlite3.Connection | None = None
        while not self.stopping.is_set():
            try:
                if db is None:
                    db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
                rows = db.execute(
                    "select t.id, t.message_id, t.action, (select count(*) from drafts d "
                    "where d.ticket_id = t.id) from tickets t where t.id > ? order by t.id",
                    (self.last_id,)).fetchall()
                db.rollback()
            except sqlite3.Error as exc:  # the schema may not exist yet
                self.error = str(exc)
                rows = []
            now = time.monotonic()
            for ticket_id, message_id, action, drafts in rows:
                self.seen.setdefault(message_id, (now, action, drafts))
                self.last_id = max(self.last_id, ticket_id)
            time.sleep(self.step)
        if db is not None:
            db.close()


# -- the machine -------------------------------------------------------------------------------

def machine() -> dict[str, object]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    import imapclient
    import sqlalchemy

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem,
            "kernel": platform.release(), "python": platform.python_version(),
            "dovecot": dovecot, "imapclient": imapclient.__version__,
            "sqlalchemy": sqlalchemy.__version__, "load_average": os.getloadavg()}


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


@contextlib.contextmanager
def dovecot() -> Iterator[DovecotServer]:
    server = DovecotServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


def finish_run(results: dict[str, object], work: Path, name: str, began: float, runs: Path,
               keep: bool) -> Path:
    """Close a run: its duration and the load at the end into ``results``, written to
    ``WORK/results-NAME.json``; the run's folder removed unless ``keep``."""
    results["seconds"] = round(time.monotonic() - began, 1)
    results["load_average_end"] = os.getloadavg()
    path = work / f"results-{name}.json"
    write_json(path, results)
    if not keep:
        shutil.rmtree(runs, ignore_errors=True)
    return path
