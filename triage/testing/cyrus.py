"""A throwaway Cyrus IMAP 3 server (Debian's packages, see :mod:`triage.testing.servers`).

``altnamespace=False`` is Debian's configuration (``altnamespace: no``, ``unixhierarchysep:
no``): the ``.`` separator and folders only under ``INBOX.``; ``True`` is upstream's default
(``/`` and top-level folders). Users live in a private sasldb; their mailboxes are created
over IMAP by the admin. ``idled`` runs, so IDLE reports new mail at once.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from triage.testing.dovecot import ImapAccount
from triage.testing.servers import ROOT, ThrowawayServer, require

MASTER = "/usr/lib/cyrus/bin/master"
ADMIN, ADMIN_PASSWORD = "cyrusadmin", "admin-secret"


class CyrusServer(ThrowawayServer):
    name = "cyrus"

    def __init__(self, altnamespace: bool = False, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.altnamespace = altnamespace
        self.bin = require(ROOT / "cyrus/usr/lib/cyrus/bin", "Cyrus IMAP (cyrus-imapd)")
        require(ROOT / "cyrus/usr/lib/cyrus/bin/imapd", "Cyrus IMAP (cyrus-imapd)")
        require(Path(MASTER), "Cyrus master (cyrus-common)")
        if shutil.which("saslpasswd2") is None:
            require(Path("/usr/sbin/saslpasswd2"), "saslpasswd2 (sasl2-bin)")

    def prepare(self) -> None:
        r = self.root
        for sub in ("config", "spool", "socket", "run"):
            (r / sub).mkdir(exist_ok=True)
        flag = "yes" if self.altnamespace else "no"
        (r / "imapd.conf").write_text(
            f"configdirectory: {r}/config\npartition-default: {r}/spool\nadmins: {ADMIN}\n"
            f"sasl_pwcheck_method: auxprop\nsasl_auxprop_plugin: sasldb\n"
            f"sasl_sasldb_path: {r}/sasldb2\nsasl_mech_list: PLAIN LOGIN\nallowplaintext: yes\n"
            f"altnamespace: {flag}\nunixhierarchysep: {flag}\n"
            f"idlesocket: {r}/socket/idle\nnotifysocket: {r}/socket/notify\n"
            f"lmtpsocket: {r}/socket/lmtp\nsyslog_prefix: triage-cyrus-{self.port}\n")
        conf = f"-C {r}/imapd.conf"
        (r / "cyrus.conf").write_text(
            "START {\n"
            f'  recover cmd="/usr/lib/cyrus/bin/ctl_cyrusdb -r {conf}"\n'
            "}\nSERVICES {\n"
            f'  imap cmd="{self.bin}/imapd {conf}" listen="{self.host}:{self.port}" '
            "prefork=0\n"
            "}\nEVENTS {\n}\nDAEMON {\n"
            f'  idled cmd="{self.bin}/idled {conf}"\n'
            "}\n")
        self._saslpasswd(ADMIN, ADMIN_PASSWORD)
        subprocess.run(["chown", "-R", "cyrus:mail", str(r)], check=True)
        r.chmod(0o755)

    def command(self) -> list[str]:
        # -D: stay in the foreground (the test owns the process group).
        return [MASTER, "-D", "-C", f"{self.root}/imapd.conf", "-M", f"{self.root}/cyrus.conf",
                "-p", f"{self.root}/run/master.pid"]

    def _saslpasswd(self, user: str, password: str) -> None:
        subprocess.run(["saslpasswd2", "-p", "-c", "-f", f"{self.root}/sasldb2", user],
                       input=password.encode(), check=True, capture_output=True)
        subprocess.run(["chown", "cyrus:mail", f"{self.root}/sasldb2"], check=True)

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapAccount:
        name = name or self.new_user_name()
        password = password or f"secret-{name}"
        self._saslpasswd(name, password)
        self.passwords[name] = password
        separator = "/" if self.altnamespace else "."
        for attempt in range(20):  # the sasldb is read at each login; give it a moment
            try:
                with self.client(ADMIN, ADMIN_PASSWORD) as imap:
                    imap.create_folder(f"user{separator}{name}")
                break
            except Exception:
                if attempt == 19:
                    raise
                time.sleep(0.1)
        return ImapAccount(self.host, self.port, name, password)
