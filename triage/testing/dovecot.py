"""A real, throwaway Dovecot IMAP server for tests.

:class:`DovecotServer` runs Debian's ``dovecot`` (package ``dovecot-imapd``) from a private
configuration under a temporary folder: its own ``base_dir``, log file, passwd-files with PLAIN
passwords (one per user) and maildir store, listening on a free loopback port. Several can run at
once; none outlives the Python process that started it (``atexit``, and on Linux the parent-death
signal).

As root, Dovecot refuses to run its login processes as root, so the configuration gives them
``dovenull`` and gives mail to the ``dovecot`` user; as another user, every process runs as that
user. Usage::

    with DovecotServer() as server:
        account = server.add_user("helpdesk38", "secret")
        uid = server.append(account.user, account.password, "INBOX", raw_bytes)
        server.stop()   # open connections are closed; data and port are kept
        server.start()  # same port, same mail

Server-side changes that a client must survive (a folder recreated, so UIDVALIDITY changes) go
through ``doveadm`` with the same configuration file.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import grp
import itertools
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from imapclient import IMAPClient
from imapclient import exceptions as imapclient_exceptions

__all__ = [
    "DovecotError",
    "DovecotNotInstalled",
    "DovecotServer",
    "ImapAccount",
    "ensure_dovecot",
]

INSTALL_HINT = "apt-get install -y dovecot-imapd"
# Unix socket paths are limited to 107 bytes; Dovecot's longest under base_dir is ~30.
_MAX_BASE_DIR = 70
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 10.0

_live_servers: set[DovecotServer] = set()
_live_lock = threading.Lock()
_user_counter = itertools.count(1)


class DovecotError(RuntimeError):
    """The test Dovecot server could not be started, stopped or driven."""


class DovecotNotInstalled(DovecotError):
    """No ``dovecot`` binary on this machine."""


def ensure_dovecot() -> str:
    """Return the path of the ``dovecot`` binary, or raise :class:`DovecotNotInstalled`."""
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise DovecotNotInstalled(
            f"dovecot is not installed: run `{INSTALL_HINT}` as root "
            "(scripts/test does it for you on Debian)"
        )
    return found


def _doveadm() -> str:
    found = shutil.which("doveadm") or shutil.which("doveadm", path="/usr/bin:/usr/local/bin")
    if found is None:
        raise DovecotNotInstalled(f"doveadm is not installed: run `{INSTALL_HINT}`")
    return found


@dataclass(frozen=True)
class ImapAccount:
    """Where and how to log in to one mailbox of a test server."""

    host: str
    port: int
    user: str
    password: str


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that nothing listens on right now.

    It is taken below the kernel's ephemeral range, so that no outgoing connection of the tests
    grabs it while a server is stopped and its ``start()`` finds it taken.
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = [random.randrange(10000, low) for _ in range(50)] if low > 10100 else []
    for port in [*candidates, 0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
            return chosen
    raise DovecotError(f"no free TCP port on {host}")


def _set_parent_death_signal() -> None:
    # Runs in the child between fork and exec: if the test process dies without running its
    # finalizers (SIGKILL, a crash), the kernel sends SIGTERM to the Dovecot master.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


class DovecotServer:
    """A private Dovecot IMAP server on a loopback port; a context manager.

    ``start()`` launches it and waits until it greets IMAP clients; ``stop()`` shuts it down
    and keeps its data and port, so a later ``start()`` brings the same mailboxes back on the
    same port; ``close()`` (or leaving the ``with`` block) stops it and deletes its folder.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.binary = ensure_dovecot()
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.root = Path(self._make_root())
        self.config_path = self.root / "dovecot.conf"
        self.passwd_dir = self.root / "passwd.d"
        self.log_path = self.root / "dovecot.log"
        self.stderr_path = self.root / "dovecot.stderr"
        self.base_dir = self.root / "run"
        self.mail_dir = self.root / "mail"
        self._users: dict[str, str] = {}
        self._secret_gid = -1  # the group that may read the passwd-files (root only)
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._lock = threading.Lock()
        # Registered from the start, so that even a server never started leaves no folder.
        with _live_lock:
            _live_servers.add(self)
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """True while the Dovecot master process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = _START_TIMEOUT) -> None:
        """Start the server (same port, same data as before) and wait until it greets clients."""
        if self._closed:
            raise DovecotError("this DovecotServer was closed; make a new one")
        if self.running:
            return
        # A master killed without cleaning up leaves master.pid behind; Dovecot then refuses
        # to start ("already running").
        (self.base_dir / "master.pid").unlink(missing_ok=True)
        main_thread = threading.current_thread() is threading.main_thread()
        with open(self.stderr_path, "ab") as stderr:
            self._process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                # The signal follows the thread that forked, so only tie it to the main thread.
                preexec_fn=_set_parent_death_signal if main_thread else None,
            )
        try:
            self._wait_for_greeting(timeout)
        except BaseException:
            self._terminate(graceful=False)
            raise

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Shut the server down in order (about 1 s); mail, users and port are kept.

        Open IMAP connections are closed (Dovecot 2.3 sends them no ``BYE``).
        """
        self._terminate(graceful=True, timeout=timeout)

    def kill(self) -> None:
        """Kill the server and its children at once with SIGKILL, as a crash would; data kept."""
        self._terminate(graceful=False)

    def restart(self) -> None:
        """``stop()`` then ``start()``."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its temporary folder.

        The data is thrown away, so the server is killed rather than shut down: Dovecot's
        orderly shutdown takes about a second.
        """
        if self._closed:
            return
        try:
            self.kill()
        finally:
            self._closed = True
            with _live_lock:
                _live_servers.discard(self)
            shutil.rmtree(self.root, ignore_errors=True)

    def _terminate(self, *, graceful: bool, timeout: float = _STOP_TIMEOUT) -> None:
        with self._lock:
            process = self._process
            if process is None:
                return
            if graceful and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout)
            # The master leads its own process group: whatever is left of it, children
            # included, goes with the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
            self._process = None
            (self.base_dir / "master.pid").unlink(missing_ok=True)

    def _wait_for_greeting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise DovecotError(
                    f"dovecot exited with status {self._process.returncode} at start-up\n"
                    + self.log_tail()
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    greeting = sock.recv(512)
                if greeting.startswith(b"* OK"):
                    return
                last_error = DovecotError(f"unexpected greeting {greeting[:80]!r}")
            except OSError as error:
                last_error = error
            time.sleep(0.02)
        raise DovecotError(
            f"dovecot did not accept IMAP connections on {self.host}:{self.port} "
            f"within {timeout:.0f} s (last error: {last_error})\n" + self.log_tail()
        )

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Dovecot's log and of its standard error, for error messages."""
        parts = []
        for path in (self.stderr_path, self.log_path):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            if tail:
                parts.append(f"--- {path} ---\n{tail}")
        return "\n".join(parts) or "(dovecot wrote no log)"

    # -- set-up ------------------------------------------------------------------------------

    @staticmethod
    def _make_root() -> str:
        root = tempfile.mkdtemp(prefix="dovecot-")
        if len(root) > _MAX_BASE_DIR:
            os.rmdir(root)
            root = tempfile.mkdtemp(prefix="dovecot-", dir="/tmp")
        # Dovecot's unprivileged processes must reach the mail and socket folders inside.
        os.chmod(root, 0o755)
        return root

    def _prepare(self) -> None:
        as_root = os.geteuid() == 0
        if as_root:
            login_user, internal_user = "dovenull", "dovecot"
            internal_group = grp.getgrgid(pwd.getpwnam("dovecot").pw_gid).gr_name
        else:
            login_user = internal_user = pwd.getpwuid(os.geteuid()).pw_name
            internal_group = grp.getgrgid(os.getegid()).gr_name
        mail_uid = pwd.getpwnam(internal_user).pw_uid
        mail_gid = grp.getgrnam(internal_group).gr_gid

        self.mail_dir.mkdir()
        (self.root / "state").mkdir()
        if as_root:
            os.chown(self.mail_dir, mail_uid, mail_gid)
        # The passwords are for Dovecot's auth process alone (it runs as the internal user):
        # nobody else on the machine may read them.
        self.passwd_dir.mkdir()
        self._secret_gid = mail_gid if as_root else -1
        self.passwd_dir.chmod(0o750 if as_root else 0o700)
        if as_root:
            os.chown(self.passwd_dir, 0, mail_gid)
        self.config_path.write_text(
            _CONFIG_TEMPLATE.format(
                root=self.root,
                base_dir=self.base_dir,
                log=self.log_path,
                mail=self.mail_dir,
                passwd_dir=self.passwd_dir,
                host=self.host,
                port=self.port,
                login_user=login_user,
                internal_user=internal_user,
                internal_group=internal_group,
                mail_uid=mail_uid,
                mail_gid=mail_gid,
                # Only as another user do services that default to root need moving.
                root_services="" if as_root else _NON_ROOT_SERVICES.format(user=internal_user),
            )
        )

    # -- accounts and mail -------------------------------------------------------------------

    def account(self, user: str) -> ImapAccount:
        """The login of an existing user."""
        return ImapAccount(self.host, self.port, user, self._users[user])

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapAccount:
        """Add a user with an empty mailbox; it can log in at once, even while running.

        Without a name, a unique one is made up; without a password, ``secret-<name>``.
        """
        if name is None:
            name = f"user{os.getpid()}x{next(_user_counter)}"
        if not re.fullmatch(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*", name):
            raise ValueError(f"unsupported user name for the passwd-file: {name!r}")
        if password is None:
            password = f"secret-{name}"
        with self._lock:
            if name in self._users:
                raise ValueError(f"user {name!r} exists already; use set_password()")
            self._write_passwd(name, password)
        return self.account(name)

    def set_password(self, name: str, password: str, timeout: float = 5.0) -> ImapAccount:
        """Change an existing user's password; returns once the server accepts the new one.

        Dovecot looks at a passwd-file at most once a second, so this can take a second.
        """
        with self._lock:
            if name not in self._users:
                raise KeyError(name)
            self._write_passwd(name, password)
        if self.running:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with self.client(name, password):
                        break
                except imapclient_exceptions.LoginError:
                    if time.monotonic() > deadline:
                        raise DovecotError(
                            f"the new password of {name!r} was not accepted within {timeout} s\n"
                            + self.log_tail()
                        ) from None
                    time.sleep(0.2)
        return self.account(name)

    def _write_passwd(self, name: str, password: str) -> None:
        if ":" in password or "\n" in password:
            raise ValueError("a passwd-file password cannot hold ':' or a newline")
        # One passwd-file per user (the passdb path holds %u): Dovecot re-reads a changed file
        # only once a second, but reads a file it has not seen before at the first lookup.
        path = self.passwd_dir / name
        previous = path.stat().st_mtime_ns if path.exists() else None
        tmp = self.passwd_dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{name}:{{PLAIN}}{password}\n")
        if self._secret_gid != -1:
            os.chown(tmp, 0, self._secret_gid)
            tmp.chmod(0o640)
        if previous is not None:
            # Dovecot notices a change by mtime (in seconds) or size: make sure one differs.
            later = max(time.time_ns(), previous + 1_000_000_000)
            os.utime(tmp, ns=(later, later))
        tmp.replace(path)
        self._users[name] = password

    @contextlib.contextmanager
    def client(self, user: str, password: str | None = None) -> Iterator[IMAPClient]:
        """An imapclient connection logged in as ``user``; logs out on exit."""
        imap = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        try:
            imap.login(user, password if password is not None else self._users[user])
            yield imap
        finally:
            with contextlib.suppress(Exception):
                imap.logout()

    def append(
        self,
        user: str,
        password: str | None,
        folder: str,
        raw: bytes,
        flags: tuple[str, ...] = (),
    ) -> int | None:
        """Append one message and return its UID (from APPENDUID, RFC 4315), creating the folder
        if needed."""
        with self.client(user, password) as imap:
            if not imap.folder_exists(folder):
                imap.create_folder(folder)
            response = imap.append(folder, raw, flags=flags)
        text = response.decode("ascii", "replace") if isinstance(response, bytes) else ""
        match = re.search(r"\[APPENDUID \d+ (\d+)\]", text)
        return int(match.group(1)) if match else None

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm -c CONFIG ARGS...`` against this server and return its output."""
        command = [_doveadm(), "-c", str(self.config_path), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
        )
        if result.returncode != 0:
            raise DovecotError(
                f"{' '.join(command)} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result.stdout

    def uidvalidity(self, user: str, folder: str) -> int:
        """The folder's current UIDVALIDITY, as the server reports it."""
        out = self.doveadm("mailbox", "status", "-u", user, "uidvalidity", folder)
        return int(out.split("=", 1)[1])

    def recreate_folder(self, user: str, folder: str) -> int:
        """Delete and create ``folder`` again, empty, so it gets a new UIDVALIDITY; return it.

        INBOX cannot be deleted in IMAP: its messages are expunged and it is given a new
        UIDVALIDITY instead, which is what a client sees after a server rebuild.
        """
        if folder.upper() == "INBOX":
            self.doveadm("expunge", "-u", user, "mailbox", "INBOX", "all")
            return self.renew_uidvalidity(user, "INBOX")
        with contextlib.suppress(DovecotError):
            self.doveadm("mailbox", "delete", "-u", user, folder)
        self.doveadm("mailbox", "create", "-u", user, folder)
        return self.uidvalidity(user, folder)

    def renew_uidvalidity(self, user: str, folder: str) -> int:
        """Give ``folder`` a new UIDVALIDITY and keep its messages (a migrated mailbox)."""
        new = max(self.uidvalidity(user, folder) + 1, int(time.time()))
        self.doveadm("mailbox", "update", "-u", user, "--uid-validity", str(new), folder)
        return new

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DovecotServer {self.host}:{self.port} {state} {self.root}>"


_NON_ROOT_SERVICES = """
service auth-worker {{
  user = {user}
}}
service stats {{
  user = {user}
}}
"""

_CONFIG_TEMPLATE = """\
# Written by triage.testing.dovecot for one test server; nothing here is for production.
base_dir = {base_dir}
state_dir = {root}/state
instance_name = triage-test-{port}
log_path = {log}
protocols = imap
listen = {host}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_verbose = yes
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = 1
mail_location = maildir:{mail}/%u
mail_fsync = never
mail_max_userip_connections = 100
mailbox_idle_check_interval = 1 secs
shutdown_clients = yes

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd_dir}/%u
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={mail}/%u
}}

namespace inbox {{
  inbox = yes
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
}}

service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
  # Without this socket the auth process disables its penalty: failed logins from one IP
  # would otherwise delay the next ones by 2 to 15 s.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{root_services}"""


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        servers = list(_live_servers)
    for server in servers:
        with contextlib.suppress(Exception):
            server.close()
