"""Mail bombs through the real intake path: each quarantined, bounded in time and memory, and
the ordinary message behind them still triaged."""

from __future__ import annotations

import subprocess
import sys
import time

from .conftest import DEV, query
from .test_intake import with_id

HEAD = (b"Message-ID: <%s@bomb.test>\r\nFrom: Eve <eve@evil.example>\r\n"
        b"To: ddfip38.pgp.spl-pes@dgfip.finances.gouv.fr\r\nSubject: bombe\r\n"
        b"MIME-Version: 1.0\r\n")


def bombs() -> dict[str, bytes]:
    big = HEAD % b"big" + b"Content-Type: text/plain\r\n\r\n" + (b"x" * 76 + b"\r\n") * 660_000
    parts = HEAD % b"parts" + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(10_000)
    ) + b"--b--\r\n"
    nested = HEAD % b"nested"
    for depth in range(1000):
        nested += b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (depth, depth)
    nested += b"Content-Type: text/plain\r\n\r\nfond\r\n"
    header = (HEAD % b"header").replace(b"Subject: bombe", b"Subject: " + b"A" * 1_048_576)
    header += b"Content-Type: text/plain\r\n\r\nJ'ai oublie mon mot de passe.\r\n"
    return {"big": big, "parts": parts, "nested": nested, "header": header}


def test_bombs_quarantined_and_the_next_message_triaged(dovecot, deployment):
    """A 50 MB message, 10,000 parts, nesting 1,000 deep and a 1 MB header are quarantined
    with their reason, the whole run stays under 300 MB, and the ordinary message after them
    is drafted."""
    acc = deployment.account_of("38")
    for raw in bombs().values():
        dovecot.append(acc.user, acc.password, "INBOX", raw)
    dovecot.append(acc.user, acc.password, "INBOX",
                   with_id((DEV / "063.eml").read_bytes(), "ordinary@test"))
    # A fresh wrapper process, so that the peak memory measured is this run's alone.
    probe = ("import resource, subprocess, sys, time; t = time.monotonic(); "
             "r = subprocess.run([sys.executable, '-m', 'triage', 'run', '--once', '--config', "
             f"{str(deployment.config_path)!r}], capture_output=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "time.monotonic() - t)")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    code, peak_kb, seconds = int(out[0]), int(out[1]), float(out[2])
    assert code == 0
    print(f"bombs run: {seconds:.1f} s, peak RSS {peak_kb // 1024} MB")
    assert peak_kb < 300 * 1024, f"peak RSS {peak_kb // 1024} MB"
    assert seconds < 60 and time.monotonic() - started < 90
    rows = dict(query(deployment, "select message_id, action from tickets"))
    for name in ("big", "parts", "nested", "header"):
        assert rows[f"{name}@bomb.test"] == "quarantine", name
    assert rows["ordinary@test"] == "draft"
    reasons = dict(query(deployment, "select message_id, reasons from tickets"))
    assert "limite" in str(reasons["big@bomb.test"])
