"""Bulk commands on several processes: `replay` and `eval` give the same output, in the same
order, with one process or a pool (triage.bulk), and a worker that dies loses nothing."""

from __future__ import annotations

import mailbox
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from triage.sources import iter_locations, mbox_spans
from triage.store import Store
from triage.testing.desk import desk_settings

DATA = Path(__file__).resolve().parent / "data"
LABELLED = ("dev", "variants", "variants2", "variants3", "adjacent")
REQUEST = ("From: Paul Martin <paul.martin@ville-voiron.fr>\r\n"
           "To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\n"
           "Date: {date}\r\nSubject: mot de passe\r\nMessage-ID: <bulk-{n}@test>\r\n\r\n"
           "J'ai oublie mon mot de passe Chorus Pro, pmartin-xt ({n})\r\n")
MALFORMED = (b"\x00\xff\xfeFrom Secretariat mairie\r\nSubject: =?utf-8?b?////?=\r\n"
             b"Content-Type: multipart/mixed; boundary=\"x\r\n\r\n--x\r\n\xff\xfe")


def triage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "triage", *args], capture_output=True,
                          text=True, check=False)


def same_sender_folder(tmp_path: Path) -> Path:
    """20 requests of one sender over four days (m00 on day 1, m01 on day 2…), so that each
    day's drafts span two chunks of the pool; then a malformed message and an mbox."""
    folder = tmp_path / "mail"
    folder.mkdir()
    for n in range(20):
        date = f"Mon, {n % 4 + 1:02d} Dec 2025 10:{n:02d}:00 +0100"
        (folder / f"m{n:02d}.eml").write_text(REQUEST.format(date=date, n=n))
    (folder / "m20.eml").write_bytes(MALFORMED)
    with (folder / "m21.mbox").open("wb") as fh:
        for name in ("020.eml", "086.eml", "045.eml"):
            raw = (DATA / "dev" / name).read_bytes().replace(b"\r\n", b"\n")
            fh.write(b"From sender@example Tue Mar 10 09:00:00 2026\n")
            fh.write(raw.replace(b"\nFrom ", b"\n>From ") + b"\n")
    return folder


def test_replay_dry_run_is_the_same_on_one_or_two_processes(tmp_path):
    """`replay --dry-run --json` of every labelled set, of one sender's 20 requests (the daily
    limit counting drafts made in other workers' chunks) and of a malformed message prints
    the same lines in the same order with --jobs 1 and --jobs 2."""
    settings = desk_settings(tmp_path)
    Store.open(settings).dispose()  # an empty store: the dry run counts its own drafts
    paths = [str(same_sender_folder(tmp_path)), *sorted(str(p) for p in DATA.iterdir())]
    one = triage("replay", "--dry-run", "--json", "--jobs", "1", "--config", settings.source,
                 *paths)
    two = triage("replay", "--dry-run", "--json", "--jobs", "2", "--config", settings.source,
                 *paths)
    assert one.returncode == 0, one.stderr
    assert two.returncode == 0, two.stderr
    assert two.stdout == one.stdout
    lines = one.stdout.splitlines()
    assert len(lines) == 926 + 1 and lines[-1].startswith("926 messages (")
    requests = lines[:20]
    assert sum('"action": "draft"' in line for line in requests) == 12
    assert sum("déjà 3 brouillons" in line for line in requests) == 8
    assert '"action": "quarantine"' in lines[20] and lines[20].startswith('{"source": "')
    assert all(f'm21.mbox#{i}", "message_id"' in line
               for i, line in zip((1, 2, 3), lines[21:24], strict=True))


def test_replay_dry_run_without_a_store_is_the_same_on_one_or_two_processes(tmp_path):
    """With no store there is no sender history: the workers conclude each message
    themselves (triage.bulk's ``finish``) and send back its line; the output is the same as
    with one process, in the same order, and no daily limit applies."""
    settings = desk_settings(tmp_path)
    paths = [str(same_sender_folder(tmp_path)), *sorted(str(p) for p in DATA.iterdir())]
    runs = [triage("replay", "--dry-run", "--json", "--jobs", jobs, "--config",
                   settings.source, *paths) for jobs in ("1", "2")]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr + runs[1].stderr
    assert runs[1].stdout == runs[0].stdout
    assert not (tmp_path / "var" / "triage.sqlite3").exists()  # a dry run creates no store
    lines = runs[0].stdout.splitlines()
    assert len(lines) == 926 + 1 and lines[-1].startswith("926 messages (")
    assert sum('"action": "draft"' in line for line in lines[:20]) == 20
    assert '"action": "quarantine"' in lines[20]


def test_eval_is_the_same_on_one_or_two_processes():
    """`eval` of each labelled set prints the same report with --jobs 1 and --jobs 2."""
    for name in LABELLED:
        one = triage("eval", "--jobs", "1", str(DATA / name))
        two = triage("eval", "--jobs", "2", str(DATA / name))
        assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
        assert two.stdout == one.stdout, name
        assert one.stdout.startswith("messages: ")


def test_replay_into_the_store_is_the_same_on_one_or_two_processes(tmp_path):
    """`replay` into a store with --jobs 1 and --jobs 2 records the same tickets, decisions,
    reasons and drafts, in the same order (the daily limit read from the store)."""
    mail = [str(same_sender_folder(tmp_path)), str(DATA / "dev")]
    rows = []
    for jobs in ("1", "2"):
        (tmp_path / jobs).mkdir()
        settings = desk_settings(tmp_path / jobs)
        run = triage("replay", "--jobs", jobs, "--config", settings.source, *mail)
        assert run.returncode == 0, run.stderr
        assert "114 messages (" in run.stdout and "; 111 new tickets" in run.stdout  # 3 twice
        db = sqlite3.connect(tmp_path / jobs / "var" / "triage.sqlite3")
        rows.append((
            db.execute("select origin, action, template, department, reasons from tickets "
                       "order by id").fetchall(),
            db.execute("select to_addr, subject, body from drafts order by id").fetchall()))
        db.close()
    assert rows[1] == rows[0]
    tickets, drafts = rows[0]
    assert [t[1] for t in tickets[:20]].count("human") == 8 and len(drafts) > 12


SCRIPT = """
import sys
from triage.bulk import Examination
from triage.config import load_settings
from triage.pipeline import conclude
from triage.sources import Location

settings = load_settings(sys.argv[1])
examination = Examination([Location(p, p) for p in sys.argv[2:]], settings, jobs=2)
for location, examined in examination:
    decision = conclude(examined, settings).decision
    print(location.name, decision.action.value, decision.reasons[-1].text, flush=True)
print("retried", examination.retried)
"""


def _descendants(pid: int) -> list[int]:
    """The processes under ``pid``, from each process's parent in /proc/N/stat."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # "pid (comm) state ppid …", comm may hold spaces and parentheses
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended meanwhile
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [c for c, p in parents.items() if p == parent]
        found += children
        todo += children
    return found


def _kill_the_reader_of(fifo: Path, parent: subprocess.Popen[str]) -> None:
    """Wait until a process of ``parent``'s tree opens ``fifo`` to read it, then SIGKILL it."""
    deadline = time.monotonic() + 120
    while True:  # a non-blocking open for writing succeeds once a reader has the FIFO open
        assert parent.poll() is None and time.monotonic() < deadline, "nobody read the FIFO"
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            time.sleep(0.01)
    try:
        while True:
            assert time.monotonic() < deadline
            readers = [pid for pid in _descendants(parent.pid) if any(
                os.path.realpath(f) == str(fifo) for f in _fds(pid))]
            if readers:
                os.kill(readers[0], signal.SIGKILL)
                # Until its files are closed the dying process still holds the FIFO, and the next
                # call's open for writing would succeed against it instead of the retry's worker.
                while _running(readers[0]) and str(fifo) in map(os.path.realpath, _fds(readers[0])):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                return
            time.sleep(0.01)
    finally:
        os.close(fd)


def _fds(pid: int) -> list[str]:
    try:
        return [str(p) for p in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:  # the process ended meanwhile
        return []


def test_a_message_that_kills_its_worker_is_quarantined_in_its_place(tmp_path):
    """A worker killed while it reads a message (here a FIFO, killed with SIGKILL, as the
    kernel's OOM killer would) loses nothing: the chunk's messages are examined again one at
    a time, the one that kills its process again is quarantined, and the order holds.
    Real processes: no parser bug can be produced on demand, so the test kills the worker."""
    settings = desk_settings(tmp_path)
    fifo = tmp_path / "poison.eml"
    os.mkfifo(fifo)
    first, last = str(DATA / "dev" / "020.eml"), str(DATA / "dev" / "045.eml")
    run = subprocess.Popen([sys.executable, "-c", SCRIPT, settings.source, first, str(fifo),
                            last], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _kill_the_reader_of(fifo, run)  # the pool's worker: the chunk is retried
        _kill_the_reader_of(fifo, run)  # the retry's own worker: the message is quarantined
        out, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, err
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [
        [first, "draft"], [str(fifo), "quarantine"], [last, "human"]]
    assert "le processus d'analyse s'est arrêté sur ce message" in lines[1]
    assert lines[3] == "retried 3"


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_when_the_command_is_killed():
    """A `replay` killed outright (SIGKILL, no clean-up) leaves no worker process behind."""
    run = subprocess.Popen([sys.executable, "-m", "triage", "replay", "--dry-run", "--jobs", "2",
                            *sorted(str(p) for p in DATA.iterdir())],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while len(workers := _descendants(run.pid)) < 2:
            assert run.poll() is None and time.monotonic() < deadline, "no workers seen"
            time.sleep(0.01)
        run.kill()
        run.wait()
        while any(_running(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers left running"
            time.sleep(0.05)
    finally:
        run.kill()


def test_mbox_spans_are_those_of_the_standard_library(tmp_path):
    """The mbox reader finds the same messages, byte for byte, as `mailbox.mbox`: empty lines
    before `From `, a `From ` line with no empty line before it, CRLF, a last empty line,
    text before the first `From ` line, an empty message and a last line with no LF."""
    cases = {
        "plain": b"From a\nA: 1\n\nbody\n\nFrom b\nB: 2\n\nbody\n",
        "no-empty-line": b"From a\nA: 1\n\nbody\nFrom b\nB: 2\n\nbody",
        "crlf": b"From a\r\nA: 1\r\n\r\nbody\r\n\r\nFrom b\r\nB: 2\r\n\r\nbody\r\n\r\n",
        "trailing": b"From a\nA: 1\n\nbody\n\n\n",
        "preamble": b"junk\nmore\n\nFrom a\nA: 1\n\nbody\n",
        "empty-message": b"From a\n\nFrom b\nB: 2\n\nx\n",
        "no-lf": b"From a\nA: 1\n\n>From escaped\nFrom b",
        "blank-lines": b"\n\nFrom a\n\n\n\nFrom b\n\n\nFrom c\nFrom d\n\n",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.mbox"
        path.write_bytes(data)
        box = mailbox.mbox(str(path), create=False)
        expected = [box.get_bytes(key) for key in box.iterkeys()]
        box.close()
        got = [location.read() for location in iter_locations([str(path)])]
        assert got == expected, name
        spans = list(mbox_spans(path))
        for block_size in range(1, 12):  # every "From " line across a block boundary
            assert list(mbox_spans(path, block_size)) == spans, (name, block_size)
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    assert list(mbox_spans(empty)) == []
