"""The naive reader that most scripts are: each message fetched whole, one UID at a time, parsed.

``imapclient`` fetches ``BODY.PEEK[]`` of one UID per command (``PEEK``, on a folder opened
read-only: the mailbox is left as it was found) and :func:`email.message_from_bytes` parses it
with ``policy=email.policy.default``; nothing else is done with it. This is the baseline the
backlog run compares ``triage run --once`` with.

Usage::

    python bench/naive.py --host 127.0.0.1 --port 10143 --user USER --password-file FILE

prints one JSON line: messages, bytes, seconds.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import sys
import time
from pathlib import Path

from imapclient import IMAPClient


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--folder", default="INBOX")
    parser.add_argument("--limit", type=int, default=0, help="read only the first N messages")
    args = parser.parse_args(argv)
    start = time.monotonic()
    count = size = 0
    with IMAPClient(args.host, port=args.port, ssl=False, timeout=120) as imap:
        imap.login(args.user, args.password_file.read_text().strip())
        imap.select_folder(args.folder, readonly=True)
        uids = imap.search(["ALL"])
        if args.limit:
            uids = uids[: args.limit]
        for uid in uids:
            raw = imap.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
            email.message_from_bytes(raw, policy=email.policy.default)
            count += 1
            size += len(raw)
    print(json.dumps({"messages": count, "bytes": size,
                      "seconds": round(time.monotonic() - start, 3)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
