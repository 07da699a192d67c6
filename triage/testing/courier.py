"""A throwaway Courier-IMAP 5 server (Debian's packages, see :mod:`triage.testing.servers`).

``couriertcpd`` + ``imaplogin`` + ``imapd`` with ``authdaemond`` reading a userdb of virtual
users, run in a private mount namespace (``unshare -m``) where our own ``/etc/courier`` and
``/run/courier`` are bind-mounted, so the machine's configuration stays untouched. Maildirs
live under the temporary folder. As Debian configures it: UIDPLUS, IDLE, NAMESPACE with the
``INBOX.`` prefix and ``.`` separator, no MOVE, no SPECIAL-USE, and APPEND to the examined
mailbox refused. ``uidplus=False`` removes UIDPLUS from its capabilities: a server with
neither MOVE nor UIDPLUS.
"""

from __future__ import annotations

import pwd
import shutil
import subprocess
from pathlib import Path

from triage.testing.dovecot import ImapAccount
from triage.testing.servers import ROOT, ThrowawayServer, require

AUTHDAEMOND = "/usr/lib/courier/courier-authlib/authdaemond"
COURIERTCPD = "/usr/sbin/couriertcpd"


class CourierServer(ThrowawayServer):
    name = "courier"

    def __init__(self, uidplus: bool = True, enhanced_idle: bool = False,
                 host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.uidplus, self.enhanced_idle = uidplus, enhanced_idle
        self.imaplogin = require(ROOT / "courier/usr/lib/courier/courier/imaplogin",
                                 "Courier-IMAP (courier-imap)")
        self.imapd = require(ROOT / "courier/usr/bin/imapd", "Courier-IMAP (courier-imap)")
        for tool in (AUTHDAEMOND, COURIERTCPD):
            require(Path(tool), "Courier's base and authentication daemon (courier-base, "
                    "courier-authdaemon)")
        for tool in ("makeuserdb", "userdbpw", "maildirmake.courier", "unshare"):
            if shutil.which(tool) is None:
                require(Path("/usr/sbin") / tool, f"{tool} (courier-authlib-userdb, "
                        "courier-base, util-linux)")
        owner = pwd.getpwnam("courier")
        self.uid, self.gid = owner.pw_uid, owner.pw_gid

    def prepare(self) -> None:
        r = self.root
        etc, run = r / "etc", r / "run"
        (run / "authdaemon").mkdir(parents=True, exist_ok=True)
        (r / "mail").mkdir(exist_ok=True)
        shutil.copytree("/etc/courier", etc, dirs_exist_ok=True)
        shutil.copytree(ROOT / "courier/etc/courier", etc, dirs_exist_ok=True)
        rc = etc / "authdaemonrc"
        rc.write_text("".join(
            'authmodulelist="authuserdb"\n' if line.startswith("authmodulelist=") else line
            for line in rc.read_text().splitlines(keepends=True)))
        userdb = etc / "userdb"
        userdb.touch()
        userdb.chmod(0o600)
        subprocess.run(["makeuserdb", "-f", str(userdb)], check=True, capture_output=True)
        capability = "IMAP4rev1 CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES " \
            f"SORT QUOTA IDLE{' UIDPLUS' if self.uidplus else ''}"
        (r / "start.sh").write_text(
            "#!/bin/sh\nset -e\n"
            f"mount --bind {etc} /etc/courier\nmount --bind {run} /run/courier\n"
            f"{AUTHDAEMOND} &\n"
            f"set -a\n. {etc}/imapd\n"
            f'IMAP_CAPABILITY="{capability}"\nIMAP_CAPABILITY_ORIG="{capability}"\n'
            f"IMAP_ENHANCEDIDLE={int(self.enhanced_idle)}\n"
            f"IMAP_STARTTLS=NO\nIMAP_TLS_REQUIRED=0\nset +a\n"
            f"exec {COURIERTCPD} -address={self.host} -maxprocs=100 -maxperip=100 "
            f"-nodnslookup -noidentlookup -stderr={run}/imapd.log {self.port} "
            f"{self.imaplogin} {self.imapd} Maildir\n")
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(r / "mail")], check=True)

    def command(self) -> list[str]:
        return ["unshare", "-m", "--propagation", "private", "/bin/sh", str(self.root /
                                                                             "start.sh")]

    def add_user(self, name: str | None = None, password: str | None = None) -> ImapAccount:
        name = name or self.new_user_name()
        password = password or f"secret-{name}"
        home = self.root / "mail" / name
        home.mkdir(parents=True, exist_ok=True)
        subprocess.run(["maildirmake.courier", str(home / "Maildir")], check=True,
                       capture_output=True)
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(home)], check=True)
        hashed = subprocess.run(["userdbpw", "-md5"], input=f"{password}\n{password}\n",
                                text=True, capture_output=True, check=True).stdout.strip()
        userdb = self.root / "etc" / "userdb"
        with userdb.open("a") as fh:
            fh.write(f"{name}\tuid={self.uid}|gid={self.gid}|home={home}|"
                     f"mail={home}/Maildir|systempw={hashed}\n")
        subprocess.run(["makeuserdb", "-f", str(userdb)], check=True, capture_output=True)
        self.passwords[name] = password
        return ImapAccount(self.host, self.port, name, password)
