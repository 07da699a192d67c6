"""The ``triage`` command line.

Exit statuses: 0 success; 1 a check failed (``eval --min-accuracy``); 2 bad configuration or
bad usage (the message names the file, the line and the key).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from triage import __version__
from triage.config import Settings, load_settings
from triage.errors import ConfigError, SourceError, StoreError

CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Configuration file (default: $TRIAGE_CONFIG, else config/departments.yaml).")


def settings_or_exit(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="triage")
def main() -> None:
    """Triage of the Chorus Pro -xt password helpdesk mailboxes."""


@main.command("check-config")
@CONFIG_OPTION
def check_config(config_path: Path | None) -> None:
    """Validate the configuration file and exit (status 2 on the first error)."""
    settings = settings_or_exit(config_path)
    click.echo(f"{settings.source}: OK ({len(settings.departments)} departments: "
               f"{', '.join(d.code for d in settings.departments)})")


@main.command()
@CONFIG_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message and line.")
@click.option("--mailbox", default=None, help="Receiving mailbox address, when known.")
@click.argument("paths", nargs=-1, required=True)
def explain(config_path: Path | None, as_json: bool, mailbox: str | None,
            paths: tuple[str, ...]) -> None:
    """Print the decision and its reasons for each message (files, folders, mbox)."""
    from triage.pipeline import triage_bytes
    from triage.sources import iter_sources

    settings = settings_or_exit(config_path)
    try:
        for source in iter_sources(list(paths)):
            outcome = triage_bytes(source.raw, settings, mailbox)
            d = outcome.decision
            record: dict[str, Any] = {
                "source": source.name,
                "message_id": outcome.message.message_id if outcome.message else None,
                "action": d.action.value,
                "template": d.template,
                "intent": d.intent,
                "department": d.department,
                "nominative": d.nominative,
                "identifier": d.identifier,
                "reasons": [str(r) for r in d.reasons],
            }
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                click.echo(_explain_text(record, outcome))
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _explain_text(record: dict[str, Any], outcome: Any) -> str:
    lines = [f"{record['source']}",
             f"  action: {record['action']}" + (f" ({record['template']})" if record["template"]
                                                 else ""),
             f"  intent: {record['intent']}   department: {record['department'] or 'none'}   "
             f"nominative: {'yes' if record['nominative'] else 'no'}   "
             f"identifier: {record['identifier'] or 'none'}",
             "  reasons:"]
    lines += [f"    - {r}" for r in record["reasons"]]
    if outcome.draft is not None:
        lines += ["  draft:", f"    To: {outcome.draft.to}", f"    Subject: {outcome.draft.subject}"]
        lines += ["    | " + ln for ln in outcome.draft.body.splitlines()]
    return "\n".join(lines) + "\n"


@main.command("eval")
@CONFIG_OPTION
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=None,
              help="Exit 1 when the share of fully right messages is below this.")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
def eval_command(config_path: Path | None, min_accuracy: float | None, folder: Path) -> None:
    """Compare decisions with FOLDER/labels.tsv: accuracy per field, confusion, errors."""
    from triage.evaluate import evaluate_folder

    settings = settings_or_exit(config_path)
    try:
        report = evaluate_folder(folder, settings)
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo("\n".join(report.lines()))
    if min_accuracy is not None and report.accuracy < min_accuracy:
        click.echo(f"\nFAIL: accuracy {report.accuracy:.3f} below {min_accuracy:.3f}", err=True)
        sys.exit(1)


@main.command()
@CONFIG_OPTION
@click.option("--mailbox", default=None, help="Receiving mailbox address, when known.")
@click.option("--dry-run", is_flag=True, help="Decide and report; write nothing.")
@click.argument("paths", nargs=-1, required=True)
def replay(config_path: Path | None, mailbox: str | None, dry_run: bool,
           paths: tuple[str, ...]) -> None:
    """Push .eml files, folders or mbox files through the whole pipeline into the store."""
    from triage.pipeline import triage_bytes
    from triage.sources import count_sources, iter_sources
    from triage.store import Store

    settings = settings_or_exit(config_path)
    try:
        total = count_sources(list(paths))
        store = None if dry_run else Store.open(settings)
        counts: dict[str, int] = {}
        created = 0
        with click.progressbar(iter_sources(list(paths)), length=total, label="replay",
                               file=sys.stderr, show_pos=True) as bar:
            for source in bar:
                outcome = triage_bytes(source.raw, settings, mailbox)
                counts[outcome.decision.action.value] = counts.get(
                    outcome.decision.action.value, 0) + 1
                if store is not None:
                    _ticket, new = store.record(outcome, source.raw, origin=f"replay:{source.name}",
                                                mailbox=mailbox)
                    created += int(new)
    except (SourceError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    click.echo(f"{total} messages ({summary})" + ("" if dry_run else f"; {created} new tickets"))


@main.command()
@CONFIG_OPTION
@click.option("--once", is_flag=True, help="Process what waits in every mailbox, then exit.")
@click.option("--log-json/--log-text", default=None, help="Log format (default: JSON unless "
              "stderr is a terminal).")
def run(config_path: Path | None, once: bool, log_json: bool | None) -> None:
    """Watch the configured mailboxes and triage every new message (the daemon)."""
    from triage.logs import setup_logging
    from triage.mailbox.daemon import Daemon
    from triage.store import Store

    setup_logging(log_json)
    settings = settings_or_exit(config_path)
    if not settings.mailboxes:
        click.echo(f"configuration error: {settings.source}: mailboxes: no mailbox to watch "
                   "(add entries under `mailboxes:`)", err=True)
        sys.exit(2)
    try:
        store = Store.open(settings)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    daemon = Daemon(settings, config_path, store)
    if once:
        results = daemon.run_once()
        failed = {k: v for k, v in results.items() if isinstance(v, str)}
        for address, result in results.items():
            if isinstance(result, str):
                click.echo(f"{address}: FAILED {result}", err=True)
            else:
                click.echo(f"{address}: {result.seen} triaged, {result.created} new tickets, "
                           f"{result.moved} moved, {result.transferred} transferred")
        sys.exit(1 if failed else 0)
    daemon.serve_forever()


@main.command()
@CONFIG_OPTION
def status(config_path: Path | None) -> None:
    """Per mailbox: connection, last poll, messages waiting, tickets, reconciliation."""
    from triage.mailbox.status import format_status, mailbox_status
    from triage.store import Store

    settings = settings_or_exit(config_path)
    try:
        store = Store.open(settings)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    rows = mailbox_status(settings, store)
    click.echo(format_status(rows) if rows else "no mailbox configured")
    sys.exit(0 if all(r.connection == "ok" and r.reconciled for r in rows) else 1)
