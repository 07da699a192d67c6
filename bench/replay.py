"""``triage replay --dry-run`` of a 100,000-message archive, on one process and on a pool.

The archive is one mbox of generated helpdesk mail (``bench/generate.py``, seed 1): the kinds
and shares of the backlog corpus, without its 10 to 25 MB attachments (1 % of the messages
come without attachment instead): a year of a helpdesk mailbox rather than a stress test of
size. 10 % still carry a 0.2 to 2 MB attachment. It is made once (both cores, a few minutes)
and kept in ``WORKDIR`` unless ``--remove-archive``.

Each run starts ``triage replay --dry-run --jobs N`` on it under GNU ``time`` (wall, user and
system CPU of the process and of its workers, ``ru_maxrss``: the largest single process) and
samples the resident memory of the whole process tree every second (its peak sum) and the CPU
of the command's own process (what the workers do not take off it). No store
exists in the run's configuration, so nothing reads or writes one. Before each run the archive
is read once, so that it is in the page cache as right after it was built and the figure is
the triage's, not the disk's; ``--cold`` empties the page cache instead (as root): from the
disk, the same code took 102 to 144 s on a machine where the warm runs took 94 to 97 s
(docs/performance.md). Runs take
``/work/brief/bench.lock`` (``--lock``) so that no two benchmarks overlap, and the load
average is printed before and after each::

    python bench/replay.py                       # --count 100000 --jobs 1 2
    python bench/replay.py --count 10000 --jobs 2

Figures go to stdout and ``WORKDIR/results-replay.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import generate

ROOT = Path(__file__).resolve().parent.parent
LOCK = Path("/work/brief/bench.lock")
FROM_LINE = re.compile(rb"\n(>*From )")


def _message(args: tuple[int, int]) -> tuple[str, int, int, bytes]:
    seed, index = args
    g = generate.make_message(seed, index, huge=False)
    # mboxrd: a line starting with "From " (or ">From ", ">>From "…) gains a ">".
    raw = FROM_LINE.sub(rb"\n>\1", g.raw)
    return g.kind, len(g.raw), g.attachment, raw


def build_archive(path: Path, count: int, seed: int) -> dict[str, Any]:
    """Write the mbox (if missing) and return what it holds."""
    info_path = path.with_suffix(".json")
    if path.exists() and info_path.exists():
        info: dict[str, Any] = json.loads(info_path.read_text())
        if info.get("count") == count and info.get("seed") == seed:
            return info
    started = time.monotonic()
    kinds: Counter[str] = Counter()
    sizes, attachments = [], 0
    tmp = path.with_suffix(".part")
    with tmp.open("wb") as out, multiprocessing.Pool(os.cpu_count()) as pool:
        jobs = ((seed, i) for i in range(count))
        for n, (kind, size, attachment, raw) in enumerate(
                pool.imap(_message, jobs, chunksize=64), 1):
            out.write(b"From MAILER-DAEMON Mon Mar  2 08:00:00 2026\n" + raw
                      + (b"" if raw.endswith(b"\n") else b"\n") + b"\n")
            kinds[kind] += 1
            sizes.append(size)
            attachments += attachment > 0
            if n % 10_000 == 0:
                print(f"  generated {n} messages ({time.monotonic() - started:.0f} s)",
                      file=sys.stderr, flush=True)
    tmp.rename(path)
    plain = sorted(sizes)
    info = {"count": count, "seed": seed, "bytes": path.stat().st_size,
            "with_attachment": attachments, "median_size": plain[len(plain) // 2],
            "kinds": dict(sorted(kinds.items())),
            "generated_in_s": round(time.monotonic() - started, 1)}
    info_path.write_text(json.dumps(info, indent=2))
    return info


def config_without_store(folder: Path) -> Path:
    """The shipped configuration, its data (and so its store) under an empty ``folder``."""
    src = (ROOT / "config" / "departments.yaml").read_text("utf-8")
    config = folder / "departments.yaml"
    config.write_text(src.replace("templates_dir: ../templates",
                                  f"templates_dir: {ROOT / 'templates'}")
                      .replace("data_dir: ../var", f"data_dir: {folder / 'var'}"))
    return config


def _tree(pid: int) -> tuple[int, float]:
    """The resident memory (kB) of ``pid`` and every process under it, summed; and the CPU
    seconds so far of the replay's own process (the first ``triage`` one of the tree, whose
    workers are forked copies of it)."""
    stats: dict[int, list[str]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = (entry / "stat").read_text().rpartition(")")[2].split()
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[int(entry.name)] = int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, todo, main_cpu = {pid}, [pid], 0.0
    while todo:
        parent = todo.pop()
        children = [c for c, st in stats.items() if int(st[1]) == parent]
        for child in children:
            if not main_cpu and _is_triage(child):
                ticks = os.sysconf("SC_CLK_TCK")
                main_cpu = (int(stats[child][11]) + int(stats[child][12])) / ticks
        tree.update(children)
        todo += children
    return sum(rss.get(p, 0) for p in tree), main_cpu


def _is_triage(pid: int) -> bool:
    try:
        return b"-m\0triage\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def prepare_cache(archive: Path, cold: bool) -> dict[str, Any]:
    """Put the archive in the page cache (read once, as right after it is built), or, with
    ``cold``, empty the page cache (as root) so that the run reads it from the disk."""
    if cold:
        os.sync()
        try:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        except OSError as exc:
            raise SystemExit(f"--cold needs root (the page cache is emptied): {exc}") from exc
        return {"cache": "cold (page cache emptied before the run)"}
    started = time.monotonic()
    buffer = bytearray(8 << 20)
    with archive.open("rb", buffering=0) as fh:
        while fh.readinto(buffer):
            pass
    return {"cache": "warm (archive read before the run)",
            "archive_read_s": round(time.monotonic() - started, 1)}


def timed_run(archive: Path, jobs: int, lock: bool, cold: bool = False) -> dict[str, Any]:
    gnu_time = shutil.which("time", path="/usr/bin:/bin")
    if gnu_time is None:
        raise SystemExit("GNU time is needed: apt-get install -y time")
    with tempfile.TemporaryDirectory(prefix="triage-replay-") as tmp:
        config = config_without_store(Path(tmp))
        report = Path(tmp) / "time.txt"
        command = [gnu_time, "-f", "%e %U %S %M", "-o", str(report), sys.executable, "-m",
                   "triage", "replay", "--dry-run", "--jobs", str(jobs), "--config",
                   str(config), str(archive)]
        with _locked(lock):
            cache = prepare_cache(archive, cold)
            return {**_measure(command, report, jobs), **cache}


@contextlib.contextmanager
def _locked(lock: bool) -> Iterator[None]:
    """Hold the benchmarks' lock (flock(2), as ``flock(1)`` takes it) around one run."""
    if not lock:
        yield
        return
    with LOCK.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _measure(command: list[str], report: Path, jobs: int) -> dict[str, Any]:
    """Run ``command`` (under GNU time, which writes ``report``) and read its figures."""
    before = uptime()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    peak, main_cpu = 0, 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, main_cpu
        while not done.wait(1.0):
            rss, cpu = _tree(proc.pid)
            peak, main_cpu = max(peak, rss), max(main_cpu, cpu)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    after = uptime()
    if proc.returncode != 0:
        raise SystemExit(f"replay failed ({proc.returncode}): {err.decode()[-2000:]}")
    wall, user, system, max_rss = report.read_text().split()[-4:]
    cpu = float(user) + float(system)
    return {"jobs": jobs, "wall_s": float(wall), "user_s": float(user),
            "system_s": float(system), "cpu_share_of_2_cores": round(cpu / float(wall) / 2, 2),
            "largest_process_rss_mb": round(int(max_rss) / 1024),
            "tree_rss_peak_mb": round(peak / 1024), "main_process_cpu_s": round(main_cpu, 1),
            "summary": out.decode().strip(),
            "uptime_before": before, "uptime_after": after}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, nargs="*", default=[1, 2],
                        help="the runs, by number of processes (none: only build the archive)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/triage-bench"))
    parser.add_argument("--no-lock", dest="lock", action="store_false",
                        help=f"do not take {LOCK} around each run")
    parser.add_argument("--cold", action="store_true",
                        help="empty the page cache before each run (root), instead of reading "
                             "the archive into it")
    parser.add_argument("--remove-archive", action="store_true")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    archive = args.workdir / f"archive-{args.count}-seed{args.seed}.mbox"
    info = build_archive(archive, args.count, args.seed)
    print(json.dumps({"archive": str(archive), **info}, indent=2))
    results: dict[str, Any] = {"archive": info, "runs": []}
    for jobs in args.jobs:
        run = timed_run(archive, jobs, args.lock, args.cold)
        run["messages_per_s"] = round(args.count / run["wall_s"], 1)
        run["cpu_ms_per_message"] = round((run["user_s"] + run["system_s"]) * 1000 / args.count,
                                          2)
        results["runs"].append(run)
        print(json.dumps(run, indent=2, ensure_ascii=False), flush=True)
    (args.workdir / "results-replay.json").write_text(json.dumps(results, indent=2,
                                                                 ensure_ascii=False))
    if args.remove_archive:
        archive.unlink()
        archive.with_suffix(".json").unlink()


if __name__ == "__main__":
    main()
