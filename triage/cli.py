"""The ``triage`` command line.

Exit statuses: 0 success; 1 a check failed (``eval --min-accuracy``); 2 bad configuration or
bad usage (the message names the file, the line and the key).
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from triage import __version__
from triage.config import Settings, load_settings
from triage.errors import ConfigError, SourceError, StoreError

if TYPE_CHECKING:
    from triage.pipeline import Examined, Outcome
    from triage.sources import Location

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


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(folder: Path, force: bool) -> None:
    """Write a starter configuration and reply templates under FOLDER (default: here).

    FOLDER/config/departments.yaml and FOLDER/templates/: edit them, check them with
    `triage check-config`, then run the commands from FOLDER (or set TRIAGE_CONFIG).
    """
    from triage.config import write_starter

    try:
        written = write_starter(folder, force=force)
    except FileExistsError as exc:
        click.echo(f"error: already there (keep them, or --force to overwrite): {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"error: cannot write the starter under {folder}: {exc}", err=True)
        sys.exit(2)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(f"next: edit {written[0]} (departments, mailboxes, smtp, web), then "
               f"`triage check-config --config {written[0]}`")


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
@click.option("--history", "with_history", is_flag=True,
              help="Check the per-sender daily limit against the configured store's history, "
                   "as the daemon does (as of the message's arrival when the store holds it, "
                   "else of its Date). Without it, the reasons say the limit was not checked.")
@click.argument("paths", nargs=-1, required=True)
def explain(config_path: Path | None, as_json: bool, mailbox: str | None, with_history: bool,
            paths: tuple[str, ...]) -> None:
    """Print the decision and its reasons for each message (files, folders, mbox)."""
    from triage.pipeline import triage_bytes
    from triage.sources import iter_sources

    settings = settings_or_exit(config_path)
    store = _store_or_exit(settings) if with_history else None
    try:
        for source in iter_sources(list(paths)):
            if store is None:
                outcome = triage_bytes(source.raw, settings, mailbox)
            else:
                history, at = store.history_of(source.raw)
                outcome = triage_bytes(source.raw, settings, mailbox, history=history, at=at,
                                       dated=at is None)
            record = _record(source.name, outcome)
            if as_json:
                click.echo(json.dumps(record, ensure_ascii=False))
            else:
                click.echo(_explain_text(record, outcome))
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _record(name: str, outcome: Any) -> dict[str, Any]:
    """One message's decision as `explain --json` and `replay --json` print it."""
    d = outcome.decision
    return {
        "source": name,
        "message_id": outcome.message.message_id if outcome.message else None,
        "action": d.action.value,
        "template": d.template,
        "intent": d.intent,
        "department": d.department,
        "nominative": d.nominative,
        "identifier": d.identifier,
        "reasons": [str(r) for r in d.reasons],
        "rules": _rules_described(d.reasons),
    }


def _store_or_exit(settings: Settings):  # type: ignore[no-untyped-def]
    from triage.store import Store

    try:
        return Store.open(settings)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def _existing_store(settings: Settings):  # type: ignore[no-untyped-def]
    """The configured store when it exists at this code's schema, else None."""
    from triage.store import Store

    try:
        return Store.from_url(settings.store_url, create=False)
    except StoreError:
        return None


def _rules_described(reasons: Any) -> dict[str, str]:
    """Label -> description of each rule that gave a reason, in order."""
    from triage import rules

    out: dict[str, str] = {}
    for reason in reasons:
        described = rules.description(reason.rule)
        if described:
            out.setdefault(rules.label(reason.rule), described)
    return out


def _explain_text(record: dict[str, Any], outcome: Any) -> str:
    from triage import rules

    lines = [f"{record['source']}",
             f"  action: {record['action']}" + (f" ({record['template']})" if record["template"]
                                                 else ""),
             f"  intent: {record['intent']}   department: {record['department'] or 'none'}   "
             f"nominative: {'yes' if record['nominative'] else 'no'}   "
             f"identifier: {record['identifier'] or 'none'}",
             "  reasons (by rule: what it judges, then what it found):"]
    current = None
    for reason in outcome.decision.reasons:
        if reason.rule != current:
            current = reason.rule
            described = rules.description(reason.rule)
            lines.append(f"    {rules.label(reason.rule)}" + (f" — {described}" if described
                                                             else ""))
        lines.append(f"      - {reason.text}")
    if outcome.draft is not None:
        lines += ["  draft:", f"    To: {outcome.draft.to}",
                  f"    Subject: {outcome.draft.subject}"]
        lines += ["    | " + ln for ln in outcome.draft.body.splitlines()]
    return "\n".join(lines) + "\n"


JOBS_OPTION = click.option(
    "--jobs", type=click.IntRange(min=1), default=None,
    help="Processes that parse and run the rules (default: one per core it may use); the "
         "decisions, made in order in this process, are the same for any number. 1: all in "
         "this process.")


def _jobs(given: int | None) -> int:
    """``--jobs``, by default the cores this process may run on."""
    if given:
        return given
    if hasattr(os, "sched_getaffinity"):  # a container or taskset may allow fewer than all
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _note_retried(messages: int) -> None:
    """Say on stderr that a worker died: its messages were examined again (triage.bulk)."""
    if messages:
        click.echo(f"note: a worker process stopped; {_count(messages, 'message')} examined "
                   "again one at a time", err=True)


@main.command("eval")
@CONFIG_OPTION
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=None,
              help="Exit 1 when the share of fully right messages is below this.")
@click.option("--max-wrong-drafts", type=click.IntRange(min=0), default=None,
              help="Exit 1 when more drafts than this are wrong (drafted for a message that "
                   "wants none, or from another template).")
@JOBS_OPTION
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
def eval_command(config_path: Path | None, min_accuracy: float | None,
                 max_wrong_drafts: int | None, jobs: int | None, folder: Path) -> None:
    """Compare decisions with FOLDER/labels.tsv: accuracy per field, confusion matrices of
    actions and templates, draft precision, errors."""
    from triage.evaluate import evaluate_folder

    settings = settings_or_exit(config_path)
    try:
        report = evaluate_folder(folder, settings, jobs=_jobs(jobs))
    except SourceError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _note_retried(report.retried)
    click.echo("\n".join(report.lines()))
    failed = False
    if min_accuracy is not None and report.accuracy < min_accuracy:
        click.echo(f"\nFAIL: accuracy {report.accuracy:.3f} below {min_accuracy:.3f}", err=True)
        failed = True
    if max_wrong_drafts is not None and len(report.wrong_drafts) > max_wrong_drafts:
        click.echo(f"\nFAIL: {len(report.wrong_drafts)} wrong drafts, more than "
                   f"{max_wrong_drafts}", err=True)
        failed = True
    if failed:
        sys.exit(1)


@main.command()
@CONFIG_OPTION
@click.option("--mailbox", default=None, help="Receiving mailbox address, when known.")
@click.option("--dry-run", is_flag=True, help="Decide and report; write nothing.")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --dry-run and no PATHS: decide again the mail the store received in "
                   "the last DAYS days and print the decisions that would change.")
@click.option("--store-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --days: the configuration whose store holds the archived mail "
                   "(default: $TRIAGE_CONFIG, else config/departments.yaml).")
@JOBS_OPTION
@click.option("--json", "as_json", is_flag=True,
              help="Also print each message's decision, one JSON object per line, in order "
                   "(as `explain --json`).")
@click.argument("paths", nargs=-1)
def replay(config_path: Path | None, mailbox: str | None, dry_run: bool, days: float | None,
           store_config: Path | None, jobs: int | None, as_json: bool,
           paths: tuple[str, ...]) -> None:
    """Push .eml files, folders or mbox files through the whole pipeline into the store.

    To try a configuration change first: `triage replay --dry-run --days 30 --config NEW.yaml`.
    """
    from triage.bulk import Examination, examined
    from triage.pipeline import conclude
    from triage.sources import check_paths, count_sources, iter_locations
    from triage.store import Store

    settings = settings_or_exit(config_path)
    if days is not None:
        if not dry_run or paths:
            click.echo("error: --days goes with --dry-run and no PATHS", err=True)
            sys.exit(2)
        _what_would_change(settings, store_config, days)
        return
    if not paths:
        click.echo("error: give PATHS to replay, or --dry-run --days N", err=True)
        sys.exit(2)
    try:
        check_paths(list(paths))
        # The progress bar's length; elsewhere the messages are counted as they go, as
        # counting first reads a whole mbox once more.
        length = count_sources(list(paths)) if sys.stderr.isatty() else None
        total = 0
        # A dry run writes nothing, not even an empty store; it reads the history if any.
        store = Store.open(settings) if not dry_run else _existing_store(settings)
        shared = store.history() if dry_run and store is not None else None
        counts: dict[str, int] = {}
        created = 0
        # Parse and rules in worker processes; each message concluded here, in order, as the
        # sender history counts the drafts concluded before. Without a history, concluding
        # depends on the message alone: the workers do it and send back one line each.
        alone = dry_run and shared is None
        examination: Examination[Any] = Examination(
            iter_locations(list(paths)), settings, _jobs(jobs), mailbox, dated=True,
            finish=(partial(_concluded_alone, settings, mailbox, as_json) if alone
                    else examined))
        # A progress bar on a terminal only: elsewhere click prints a bare label line.
        progress = click.progressbar(examination, length=length, label="replay",
                                     file=sys.stderr, show_pos=True,
                                     hidden=not sys.stderr.isatty())
        with progress as bar:
            for location, result in bar:
                if alone:
                    action, line = result
                else:
                    # As of the message's date, with the store's sender history, so that replay
                    # decides as the daemon did (a dry run counts its own drafts as it goes).
                    history = shared if dry_run else store.history() if store else None
                    outcome = conclude(result, settings, mailbox, history)
                    action, line = _replayed(location, outcome, as_json)
                    if not dry_run and store is not None:
                        _ticket, new = store.record(outcome, location.read(),
                                                    origin=f"replay:{location.name}",
                                                    mailbox=mailbox)
                        created += int(new)
                total += 1
                counts[action] = counts.get(action, 0) + 1
                if line is not None:
                    click.echo(line)
    except (SourceError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _note_retried(examination.retried)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    click.echo(f"{_count(total, 'message')} ({summary or 'none'})"
               + ("" if dry_run else f"; {_count(created, 'new ticket')}"))


def _replayed(location: Location, outcome: Outcome, as_json: bool) -> tuple[str, str | None]:
    """What `replay` keeps of one message: its action, and its line of `--json` output."""
    line = (json.dumps(_record(location.name, outcome), ensure_ascii=False) if as_json
            else None)
    return outcome.decision.action.value, line


def _concluded_alone(settings: Settings, mailbox: str | None, as_json: bool,
                     location: Location, examination: Examined) -> tuple[str, str | None]:
    """`replay --dry-run` with no sender history: the message concluded on its own, in the
    worker that examined it (:class:`triage.bulk.Examination`'s ``finish``)."""
    from triage.pipeline import conclude

    return _replayed(location, conclude(examination, settings, mailbox), as_json)


def _what_would_change(candidate: Settings, store_config: Path | None, days: float) -> None:
    """`replay --dry-run --days N`: print the archived messages whose decision would change."""
    from triage.live import COMPARED, decisions_that_change
    from triage.store import Store

    try:
        store = Store.open(settings_or_exit(store_config), create=False)
        total = changed = 0
        by_field: dict[str, int] = {}
        for change in decisions_that_change(candidate, store, days):
            total += 1
            if change is None:
                continue
            changed += 1
            click.echo(change.describe())
            for key in COMPARED:
                if change.before[key] != change.after[key]:
                    by_field[key] = by_field.get(key, 0) + 1
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(by_field.items()))
    click.echo(f"{_count(total, 'message')} of the last {days:g} days decided again with "
               f"{candidate.source}: {_count(changed, 'decision')} would change"
               + (f" ({detail})" if detail else ""))


def _count(n: int, noun: str) -> str:
    """« 1 message », « 2 messages », « 0 messages »."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


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
    """Per mailbox: connection, last poll, messages waiting, tickets, reconciliation.

    Exits 1 when a mailbox needs an admin, and says which and why (unreachable or refused,
    mail waiting too long, copies owed for too long, folders that do not reconcile, IDLE not
    effective).
    """
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
    needing = [r.address for r in rows if r.problems]
    if needing:
        click.echo(f"needs an admin: {', '.join(needing)}", err=True)
    sys.exit(1 if needing else 0)


def _serve_web(settings: Settings, store: Any, live: Any) -> None:
    """Serve the review app with the live configuration ``live`` (a settings getter).

    SIGHUP reloads the configuration; after uvicorn's graceful stop on SIGTERM the signal is
    handed to a handler that lets the caller's clean-up run (the default one would kill).
    """
    import signal

    import uvicorn

    from triage.review.http import server_config
    from triage.review.web import create_app

    app = create_app(live, store)
    live.reload_on_sighup()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    uvicorn.Server(server_config(app, settings)).run()


@main.command()
@CONFIG_OPTION
@click.option("--host", default=None, help="Listen address (default: web.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: web.port).")
def web(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Serve the agents' review application."""
    from triage.logs import setup_logging
    from triage.store import Store

    setup_logging()
    settings = settings_or_exit(config_path)
    settings = _with_listen(settings, host, port)
    try:
        store = Store.open(settings)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"triage web on http://{settings.web.host}:{settings.web.port}/", err=True)
    from triage.live import LiveConfig

    live = LiveConfig(settings, config_path)
    live.watch()
    try:
        _serve_web(settings, store, live)
    finally:
        live.stop()


def _with_listen(settings: Settings, host: str | None, port: int | None) -> Settings:
    if host is None and port is None:
        return settings
    web_settings = settings.web.model_copy(update={k: v for k, v in (("host", host),
                                                                     ("port", port)) if v})
    return settings.model_copy(update={"web": web_settings})


@main.command()
@CONFIG_OPTION
@click.option("--host", default=None, help="Listen address (default: web.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: web.port).")
def serve(config_path: Path | None, host: str | None, port: int | None) -> None:
    """Run the daemon (intake and outbox) and the web application in one process."""
    from triage.logs import setup_logging
    from triage.mailbox.daemon import Daemon
    from triage.store import Store

    setup_logging()
    settings = _with_listen(settings_or_exit(config_path), host, port)
    try:
        store = Store.open(settings)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    daemon = Daemon(settings, config_path, store)
    daemon.start()
    try:
        _serve_web(settings, store, daemon.live)
    finally:
        daemon.stop()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Listen address of the web application.")
@click.option("--port", type=int, default=None,
              help="Listen port of the web application (default: 8080 if free, else any).")
@click.option("--imap", "imap_kind", type=click.Choice(["auto", "dovecot", "pymap"]),
              default="auto", show_default=True,
              help="IMAP server: Dovecot if installed (auto), or the pure-Python pymap.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
              default="warning", show_default=True, help="What the service logs on stderr.")
def demo(host: str, port: int | None, imap_kind: str, log_level: str) -> None:
    """Run the whole service on throwaway loopback servers with sample mail (Ctrl-C stops)."""
    from triage.demo.run import main as run_demo

    sys.exit(run_demo(host=host, port=port, imap=imap_kind, log_level=log_level))


@main.group()
def agents() -> None:
    """Manage the agents who review drafts."""


def _password(prompt: bool, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = click.prompt("Mot de passe", hide_input=True, confirmation_prompt=True)
    return value


@agents.command("add")
@CONFIG_OPTION
@click.argument("login")
@click.option("--departments", "-d", required=True, help="Department codes, comma-separated.")
@click.option("--role", type=click.Choice(["agent", "lead", "admin"]), default="agent",
              help="agent; lead (team lead: also the dashboard); admin (everything).")
@click.option("--name", default="", help="Full name shown in the pages.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def agents_add(config_path: Path | None, login: str, departments: str, role: str, name: str,
               password_stdin: bool) -> None:
    """Add an agent."""
    from triage.review.agents import AgentError, add_agent
    from triage.store import Store

    settings = settings_or_exit(config_path)
    store = Store.open(settings)
    try:
        with store.session() as s:
            add_agent(s, settings, login, _password(True, password_stdin),
                      [d.strip() for d in departments.split(",") if d.strip()], role, name)
            s.commit()
    except AgentError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"agent {login} added")


@agents.command("list")
@CONFIG_OPTION
def agents_list(config_path: Path | None) -> None:
    """List the agents."""
    from triage.store import Store
    from triage.store.agents import everyone

    store = Store.open(settings_or_exit(config_path))
    with store.session() as s:
        accounts = everyone(s)
        if not accounts:
            click.echo("no agent yet: add one with `triage agents add LOGIN -d CODE[,CODE…]`")
        for a in accounts:
            state = "disabled" if a.disabled else "active"
            click.echo(f"{a.login:<20} {a.role:<6} {','.join(a.departments):<15} {state:<9} "
                       f"{a.name}")


@agents.command("disable")
@CONFIG_OPTION
@click.argument("login")
def agents_disable(config_path: Path | None, login: str) -> None:
    """Disable an agent and end all their sessions."""
    from triage.review.agents import AgentError, disable_agent
    from triage.store import Store

    store = Store.open(settings_or_exit(config_path))
    try:
        with store.session() as s:
            disable_agent(s, login)
            s.commit()
    except AgentError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"agent {login} disabled; their sessions are ended")


@agents.command("passwd")
@CONFIG_OPTION
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def agents_passwd(config_path: Path | None, login: str, password_stdin: bool) -> None:
    """Change an agent's password (their open sessions end)."""
    from triage.review.agents import AgentError, set_password
    from triage.store import Store

    store = Store.open(settings_or_exit(config_path))
    try:
        with store.session() as s:
            set_password(s, login, _password(True, password_stdin))
            s.commit()
    except AgentError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"password of {login} changed")


@main.command()
@CONFIG_OPTION
@click.option("--ticket", type=int, default=None, help="Only this ticket (and its follow-ups).")
@click.option("--agent", "login", default=None, help="Only what this agent did.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit(config_path: Path | None, ticket: int | None, login: str | None,
          as_json: bool) -> None:
    """Print the audit trail (UTC), oldest first."""
    from triage.store import Store, Ticket
    from triage.store.queries import audit_trail

    store = Store.open(settings_or_exit(config_path))
    with store.session() as s:
        for e in audit_trail(s, ticket, login.lower() if login else None):
            at = e.at.strftime("%Y-%m-%dT%H:%M:%SZ")
            if as_json:
                click.echo(json.dumps({"at": at, "ticket": e.ticket_id, "actor": e.actor,
                                       "event": e.event, "detail": e.detail},
                                      ensure_ascii=False))
            else:
                detail = " ".join(f"{k}={v!r}" for k, v in (e.detail or {}).items()
                                  if k not in ("before", "after"))
                click.echo(f"{at}  #{e.ticket_id or '-':<6} {e.actor:<16} {e.event:<26} {detail}")
        head = s.get(Ticket, ticket) if ticket is not None and not as_json else None
        if head is not None:
            from triage.lifecycle import allowed

            actions = sorted(allowed(s, head, admin=False) | allowed(s, head, admin=True))
            click.echo(f"state: {head.status}; actions allowed now: "
                       f"{', '.join(actions) or 'none'}")


def _register_data_commands() -> None:
    from triage.retention import export_command, purge_command
    from triage.store.commands import db

    main.add_command(purge_command)
    main.add_command(export_command)
    main.add_command(db)


_register_data_commands()
