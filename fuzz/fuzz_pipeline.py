"""Coverage-guided fuzzing of parse → rules → decision → draft → outgoing message (atheris).

Run by hand (not part of the test suite)::

    pip install atheris
    python fuzz/fuzz_pipeline.py -max_total_time=300 -rss_limit_mb=1024 \\
        /tmp/fuzz-corpus tests/data/dev

Any exception that escapes, any internal error turned into a quarantine, and any outgoing
message whose recipients differ from the intended one is a crash, saved by libFuzzer as
``crash-*`` for replay (``python fuzz/fuzz_pipeline.py crash-…``).
"""

from __future__ import annotations

import email
import email.policy
import sys

import atheris

with atheris.instrument_imports():
    from triage.config import load_settings
    from triage.pipeline import triage_bytes
    from triage.send.compose import ComposeError, compose

SETTINGS = load_settings()


def one_input(data: bytes) -> None:
    outcome = triage_bytes(data, SETTINGS)
    if outcome.error is not None:
        raise RuntimeError(f"internal error on input: {outcome.error}")
    draft = outcome.draft
    if draft is None:
        return
    department = SETTINGS.department(draft.department)
    assert department is not None
    try:
        out = compose(department=department, to=draft.to, subject=draft.subject,
                      body=draft.body, ticket_id=1, in_reply_to=draft.in_reply_to,
                      references=None, message_id="f@x.test", loop_token="t")
    except ComposeError:
        return
    parsed = email.message_from_bytes(out.raw, policy=email.policy.compat32)
    if email.utils.getaddresses(parsed.get_all("To") or []) != [("", out.to_addr)]:
        raise RuntimeError(f"reply would not go to exactly {out.to_addr}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
