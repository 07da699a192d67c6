"""The configuration: ``config/departments.yaml`` loaded into frozen, typed objects.

Everything is validated at load time; the first problem raises one
:class:`~triage.errors.ConfigError` that names the file, the line and the key path. Secrets never
live in this file (mailbox passwords come from the environment or a file named here).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from triage import yamlsource
from triage.errors import ConfigError, NoConfigError

#: The templates every configuration must provide, by the name the decision uses.
TEMPLATE_NAMES = ("reset_password", "expired_password", "request_nominative_address")

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def _starter_root() -> Path:
    """Where the example configuration and templates live: ``config/`` and ``templates/``.

    A source checkout (or an editable install) reads them at the top of the tree, where admins
    and developers edit them; a wheel carries a copy of both inside the package, under
    ``triage/starter/`` (setup.py copies them there at build time), so that an installed
    package has its example without the source tree.
    """
    packaged = Path(__file__).resolve().parent / "starter"
    if (packaged / "config" / "departments.yaml").is_file():
        return packaged
    return PACKAGE_ROOT


STARTER_ROOT = _starter_root()
#: The example configuration: the demo's embedded default and what `triage init` writes.
DEFAULT_CONFIG = STARTER_ROOT / "config" / "departments.yaml"
#: The example reply templates, beside it.
DEFAULT_TEMPLATES = STARTER_ROOT / "templates"
#: Where a command looks for its configuration, in order, when ``--config`` is not given.
CONFIG_VARIABLE = "TRIAGE_CONFIG"
LOCAL_CONFIG = Path("config") / "departments.yaml"


def _address(value: str) -> str:
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address ({exc})") from exc
    return info.normalized.lower()


Address = Annotated[str, AfterValidator(_address)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _re2(pattern: str) -> str:
    try:
        compile_pattern(pattern)
    except Exception as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise ValueError(f"invalid RE2 pattern: {detail}") from exc
    return pattern


Pattern = Annotated[str, AfterValidator(_re2)]


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """Compile an admin's pattern with RE2: linear time, so no pattern can hang the daemon.

    Matching is case-insensitive and runs on folded text (lower case, no accents).
    """
    import re2

    options = re2.Options()
    options.case_sensitive = False
    options.max_mem = 8 << 20
    options.log_errors = False
    return re2.compile(pattern, options)


def compile_bytes_pattern(pattern: bytes) -> Any:
    """Compile one of the code's own patterns over raw bytes with RE2: Latin-1, one character
    a byte, so that offsets and classes are those ``re`` gives on the same bytes."""
    import re2

    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.log_errors = False
    return re2.compile(pattern, options)


def without_subaddress(address: str) -> str:
    """``box+tag@domain`` -> ``box@domain`` (RFC 5233 subaddress), lower-cased."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return domain
    return f"{local.split('+', 1)[0] or local}@{domain}"


class Department(Frozen):
    """One DDFIP helpdesk: who it is, its mailbox, and how its replies end."""

    code: str = Field(pattern=r"^(\d{2}|2A|2B|97\d)$")
    name: str = Field(min_length=1)
    mailbox: Address
    signature: str = Field(min_length=1, description="signature block that ends every reply")
    contact: tuple[str, ...] = ()
    extra_sender_domains: tuple[str, ...] = ()
    require_authentication: bool = Field(
        default=False, description="reset drafts only for DMARC-authenticated senders")
    # Other spellings of the name (« Hte-Savoie »), and phrases that contain the name without
    # meaning the department (« Savoie Mont Blanc »): RE2, on folded text.
    name_patterns: tuple[Pattern, ...] = ()
    not_names: tuple[Pattern, ...] = ()

    @field_validator("extra_sender_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        out = []
        for domain in value:
            domain = domain.strip().lower().lstrip("@")
            if not domain or "." not in domain or " " in domain:
                raise ValueError(f"not a domain name: {domain!r}")
            out.append(domain)
        return tuple(out)


class Limits(Frozen):
    """Bounds on hostile input, checked before and while parsing."""

    max_message_bytes: int = Field(default=30 * 1024 * 1024, gt=0)
    max_parts: int = Field(default=500, gt=0)
    max_depth: int = Field(default=30, gt=0)
    max_header_count: int = Field(default=1000, gt=0)
    max_header_bytes: int = Field(default=256 * 1024, gt=0)
    max_text_chars: int = Field(default=100_000, gt=0)
    max_lines: int = Field(default=1_000_000, gt=0)
    max_seconds: float = Field(default=5.0, gt=0, description="time to triage one message")


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _refuse_inline_password(cls: type, data: Any) -> Any:
    """Secrets come from the environment or a file, never from the YAML."""
    if isinstance(data, dict) and "password" in data:
        raise ValueError("passwords never go in this file: use password_env or password_file")
    return data


class Folders(Frozen):
    """IMAP folders: the one watched and one per outcome (``/`` is the hierarchy separator)."""

    watch: str = "INBOX"
    draft: str = "Triage/À valider"
    human: str = "Triage/Agent"
    ignore: str = "Triage/Ignoré"
    quarantine: str = "Triage/Quarantaine"
    transferred: str = "Triage/Transféré"
    handled: str = "Triage/Traité"
    sent: str = "Sent"

    def for_action(self, action: str) -> str:
        folder: str = getattr(self, action)
        return folder


class ImapDefaults(Frozen):
    """Connection settings shared by every mailbox unless a mailbox overrides them."""

    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    security: Literal["tls", "starttls", "plain"] = "tls"
    timeout: float = Field(default=30.0, gt=0, description="seconds for any network call")
    poll_interval: float = Field(default=5.0, gt=0)
    idle: bool = True
    idle_renew: float = Field(default=300.0, gt=0, le=1680,
                              description="re-issue IDLE after this many seconds (< 29 min)")
    batch_size: int = Field(default=100, gt=0, le=5000)
    full_fetch_bytes: int = Field(default=512 * 1024, ge=0,
                                  description="messages up to this size are fetched whole")
    max_backoff: float = Field(default=30.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=2, description="a dead instance's mailboxes "
                                 "are taken over after this")
    folders: Folders = Folders()


class Mailbox(Frozen):
    """One watched mailbox: its address, account and (optionally) its own connection settings.

    The password comes from ``password_env`` (an environment variable) or ``password_file``;
    OAuth2 (XOAUTH2) takes a token from ``oauth2_token_file`` or ``oauth2_token_command``.
    Passwords are never written in this file.
    """

    address: Address
    username: str = Field(min_length=1)
    password_env: str | None = None
    password_file: str | None = None
    oauth2_token_file: str | None = None
    oauth2_token_command: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    security: Literal["tls", "starttls", "plain"] | None = None
    folders: Folders | None = None

    _no_secret_inline = model_validator(mode="before")(_refuse_inline_password)

    @model_validator(mode="after")
    def _one_credential(self) -> Mailbox:
        given = [k for k in ("password_env", "password_file", "oauth2_token_file",
                             "oauth2_token_command") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of password_env, password_file, "
                             f"oauth2_token_file, oauth2_token_command (got {given or 'none'})")
        return self


class Patterns(Frozen):
    """Regular expressions admins may add; compiled with RE2 (linear time) at load."""

    automatic_subjects: tuple[Pattern, ...] = ()
    ignore_senders: tuple[Pattern, ...] = ()
    other_applications: tuple[Pattern, ...] = ()


class Retention(Frozen):
    """How long personal data is kept (days), and whether purging needs an authorisation.

    The helpdesk's mail is public archive material: destroying it needs the archive service's
    authorisation (« visa d'élimination ») unless ``authorisation_required`` is false.
    """

    raw_messages_days: int = Field(default=365, gt=0)
    drafts_days: int = Field(default=365, gt=0)
    audit_days: int = Field(default=1095, gt=0)
    logs_days: int = Field(default=365, gt=0)
    authorisation_required: bool = True


class Smtp(Frozen):
    """The relay approved replies go through (aiosmtplib)."""

    host: str = "127.0.0.1"
    port: int | None = Field(default=None, gt=0, lt=65536)
    security: Literal["tls", "starttls", "plain"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    timeout: float = Field(default=30.0, gt=0)
    retry_max_backoff: float = Field(default=300.0, gt=0)
    poll_interval: float = Field(default=2.0, gt=0)

    _no_secret_inline = model_validator(mode="before")(_refuse_inline_password)

    @property
    def effective_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587, "plain": 25}[self.security]


class Web(Frozen):
    """The agents' review application."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, gt=0, lt=65536)
    secret_env: str | None = Field(default=None, description="variable holding the cookie key")
    secret_file: str | None = Field(default=None, description="file holding the cookie key")
    session_idle_minutes: int = Field(default=30, gt=0)
    session_max_hours: int = Field(default=10, gt=0)
    secure_cookies: bool = Field(default=False, description="set when served over HTTPS")
    login_attempts: int = Field(default=5, gt=0, description="failed logins per login and "
                                "client before each further attempt waits")
    login_window_minutes: int = Field(default=15, gt=0)
    # -- hardening of the web application (sessions, throttling, proxies, /metrics) ----------
    login_delay_seconds: float = Field(default=5.0, gt=0, description="first wait past "
                                       "login_attempts failures; doubles with each failure")
    login_max_delay_seconds: float = Field(default=300.0, gt=0)
    login_global_per_minute: int = Field(default=120, gt=0, description="password checks per "
                                         "minute from one client; twice as many from all "
                                         "clients together")
    trusted_proxies: tuple[str, ...] = Field(default=(), description="peers whose "
                                             "X-Forwarded-For gives the client address")
    metrics_token_env: str | None = Field(default=None, description="variable holding the "
                                          "bearer token /metrics requires")
    metrics_token_file: str | None = Field(default=None, description="file holding it")

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an IP address or network: {item!r}") from exc
        return value


#: What agents read for each template (the « Modèle » list, headings); config may override.
TEMPLATE_LABELS = {"reset_password": "Réinitialisation du mot de passe",
                   "expired_password": "Mot de passe expiré",
                   "request_nominative_address": "Demande d'une adresse nominative"}


class Desk(Frozen):
    """The agents' review desk: display names, holds, the age that asks for attention."""

    display_names: dict[str, str] = Field(default_factory=lambda: dict(TEMPLATE_LABELS),
                                          description="template role → name shown to agents")
    hold_minutes: int = Field(default=120, gt=0, description="a hold (« Je m'en occupe ») "
                              "not renewed for this long expires")
    old_after_business_days: int = Field(default=2, gt=0, description="requests older than "
                                         "this many business days are highlighted")

    @field_validator("display_names")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        for name, label in value.items():
            if name not in TEMPLATE_NAMES:
                raise ValueError(f"unknown template role {name!r}; expected one of "
                                 f"{', '.join(TEMPLATE_NAMES)}")
            if not label.strip():
                raise ValueError(f"empty display name for {name!r}")
        return {**TEMPLATE_LABELS, **value}

    def label(self, template: str | None) -> str:
        return self.display_names.get(template or "", template or "")


class Store(Frozen):
    """Where tickets live: a SQLAlchemy URL; SQLite under ``data_dir`` by default."""

    url: str | None = None


class Settings(Frozen):
    """The whole configuration, as loaded from one YAML file."""

    departments: tuple[Department, ...] = Field(min_length=1)
    trusted_authserv_ids: tuple[str, ...] = ("mx.dgfip.finances.gouv.fr",)
    role_words: tuple[str, ...] = ()
    organisation_words: tuple[str, ...] = ()
    own_addresses: tuple[Address, ...] = ()
    templates: dict[str, str] = Field(default_factory=dict)
    templates_dir: str = "../templates"
    data_dir: str = "../var"
    limits: Limits = Limits()
    store: Store = Store()
    imap: ImapDefaults = ImapDefaults()
    mailboxes: tuple[Mailbox, ...] = ()
    smtp: Smtp = Smtp()
    web: Web = Web()
    desk: Desk = Desk()
    message_id_domain: str = "triage.dgfip.finances.gouv.fr"
    patterns: Patterns = Patterns()
    retention: Retention = Retention()
    max_drafts_per_sender_per_day: int = Field(default=3, gt=0)
    source: str = Field(default="", exclude=True)
    # Paths resolved once per configuration object (a reload makes a new one): the draft of
    # every message asked for the templates' folder, and resolving it took a system call per
    # component. Keyed by the fields they come from, as ``model_copy(update=...)`` shares it.
    _resolved: dict[tuple[str, str], Path] = PrivateAttr(default_factory=dict)

    @field_validator("role_words", "organisation_words", "trusted_authserv_ids")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value if v.strip())

    # -- derived views -------------------------------------------------------------------
    def department(self, code: str) -> Department | None:
        return next((d for d in self.departments if d.code == code), None)

    def department_of_mailbox(self, address: str) -> Department | None:
        """The department whose mailbox ``address`` is, plus-addressed variants included."""
        address = without_subaddress(address)
        return next((d for d in self.departments if d.mailbox == address), None)

    @property
    def helpdesk_addresses(self) -> frozenset[str]:
        return frozenset(d.mailbox for d in self.departments) | frozenset(self.own_addresses)

    def is_helpdesk_address(self, address: str) -> bool:
        """True for the service's own addresses, also written ``box+anything@domain``."""
        return without_subaddress(address) in self.helpdesk_addresses

    def path(self, relative: str) -> Path:
        """A path of the configuration, relative to the configuration file's folder, resolved
        (symbolic links followed) when this configuration first asks for it."""
        found = self._resolved.get((self.source, relative))
        if found is None:
            base = Path(self.source).parent if self.source else DEFAULT_CONFIG.parent
            found = (base / os.path.expanduser(relative)).resolve()
            self._resolved[(self.source, relative)] = found
        return found

    @property
    def templates_path(self) -> Path:
        return self.path(self.templates_dir)

    @property
    def store_url(self) -> str:
        if self.store.url:
            return self.store.url
        return f"sqlite:///{self.path(self.data_dir) / 'triage.sqlite3'}"

    def mailbox_host(self, mailbox: Mailbox) -> tuple[str, int, str]:
        """Host, port and security of ``mailbox``, defaults applied."""
        host = mailbox.host or self.imap.host or ""
        security = mailbox.security or self.imap.security
        port = mailbox.port or self.imap.port or (993 if security == "tls" else 143)
        return host, port, security

    def mailbox_folders(self, mailbox: Mailbox) -> Folders:
        return mailbox.folders or self.imap.folders

    def mailbox_of(self, address: str) -> Mailbox | None:
        address = address.strip().lower()
        return next((m for m in self.mailboxes if m.address == address), None)

    def template_file(self, name: str) -> str:
        return self.templates.get(name, f"{name}.txt.j2")


def _is_source_checkout() -> bool:
    """True when the package runs from this project's source tree (not from a wheel)."""
    pyproject = PACKAGE_ROOT / "pyproject.toml"
    try:
        return 'name = "triage"' in pyproject.read_text("utf-8")
    except OSError:
        return False


def default_config_path() -> Path:
    """The configuration file a command uses when ``--config`` is not given.

    In order: ``$TRIAGE_CONFIG``; ``config/departments.yaml`` under the working folder (the
    layout ``triage init`` writes); the source checkout's own file when running from one. An
    installed package has no configuration of its own to fall back on (its example is only the
    demo's default and ``triage init``'s starter), so otherwise :class:`NoConfigError` says how
    to give one.
    """
    env = os.environ.get(CONFIG_VARIABLE)
    if env:
        return Path(env)
    if LOCAL_CONFIG.is_file():
        return LOCAL_CONFIG
    if _is_source_checkout() and DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    raise NoConfigError(
        f"no configuration file: give --config FILE or set {CONFIG_VARIABLE}=FILE "
        f"(none in ./{LOCAL_CONFIG}; `triage init DIR` writes a starter to edit)")


def write_starter(folder: Path, *, force: bool = False) -> list[Path]:
    """Write the example configuration and templates under ``folder`` for an admin to edit.

    The layout is the project's own (``config/departments.yaml`` beside ``templates/``), so
    the relative paths inside the file hold and commands run from ``folder`` find it. Existing
    files are kept unless ``force``; the paths written are returned.
    """
    plan = [(DEFAULT_CONFIG, folder / LOCAL_CONFIG)]
    plan += [(t, folder / "templates" / t.name) for t in sorted(DEFAULT_TEMPLATES.glob("*.j2"))]
    existing = [dest for _src, dest in plan if dest.exists()]
    if existing and not force:
        raise FileExistsError(", ".join(str(p) for p in existing))
    for src, dest in plan:
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(src.read_bytes())
    return [dest for _src, dest in plan]


def load_settings(path: Path | str | None = None) -> Settings:
    """Load and validate a configuration file; raise :class:`ConfigError` on the first problem."""
    path = Path(path) if path is not None else default_config_path()
    located = yamlsource.load(path)
    if not isinstance(located.data, dict):
        raise located.error((), "the file must hold a mapping of keys (departments, …)")
    try:
        settings = Settings.model_validate({**located.data, "source": str(path)})
    except ValidationError as exc:
        raise _first_error(located, exc) from None
    _check_semantics(settings, located)
    return settings


def _first_error(located: yamlsource.LocatedYaml, exc: ValidationError) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown key (not one of the settings triage knows; check its spelling)"
    elif err["type"] == "missing":
        message = "required key is missing"
    value: Any = err.get("input")
    if err["type"] not in ("missing", "extra_forbidden") and isinstance(value, (str, int)):
        message += f" (got {value!r})"
    return located.error(loc, message)


def _check_semantics(settings: Settings, located: yamlsource.LocatedYaml) -> None:
    seen: dict[str, int] = {}
    mailboxes: dict[str, int] = {}
    for i, dept in enumerate(settings.departments):
        if dept.code in seen:
            raise located.error(("departments", i, "code"),
                                f"duplicate department code {dept.code!r} "
                                f"(first at departments[{seen[dept.code]}])")
        seen[dept.code] = i
        if dept.mailbox in mailboxes:
            raise located.error(("departments", i, "mailbox"),
                                f"mailbox {dept.mailbox} already belongs to "
                                f"departments[{mailboxes[dept.mailbox]}]")
        mailboxes[dept.mailbox] = i
    _check_department_codes(settings, located)
    addresses: dict[str, int] = {}
    for i, box in enumerate(settings.mailboxes):
        if box.address in addresses:
            raise located.error(("mailboxes", i, "address"),
                                f"mailbox {box.address} is listed twice "
                                f"(first at mailboxes[{addresses[box.address]}])")
        addresses[box.address] = i
        host, _port, security = settings.mailbox_host(box)
        if not host:
            raise located.error(("mailboxes", i, "host"),
                                "no IMAP host: set it here or in imap.host")
        if security == "plain" and host not in LOOPBACK_HOSTS:
            raise located.error(("mailboxes", i, "security"),
                                f"plain (unencrypted) IMAP is only allowed on loopback, not {host}")
    for name in settings.templates:
        if name not in TEMPLATE_NAMES:
            raise located.error(("templates", name),
                                "unknown template role; expected one of "
                                f"{', '.join(TEMPLATE_NAMES)}")
    tdir = settings.templates_path
    if not tdir.is_dir():
        raise located.error(("templates_dir",), f"templates folder {tdir} does not exist")
    for name in TEMPLATE_NAMES:
        file = settings.template_file(name)
        if not (tdir / file).is_file():
            key: yamlsource.KeyPath = ("templates", name) if name in settings.templates else (
                "templates",)
            raise located.error(key, f"template {file!r} does not exist in {tdir}")


def _check_department_codes(settings: Settings, located: yamlsource.LocatedYaml) -> None:
    """Every department code must be one the communes data knows: its communes, postal codes
    and groupings are what routes a request to it by content."""
    from triage.rules.communes import french_departments  # the data's owner; loaded lazily

    known = french_departments()
    for i, dept in enumerate(settings.departments):
        if dept.code not in known:
            raise located.error(("departments", i, "code"),
                                f"unknown department code {dept.code!r}: not in the communes "
                                "data (triage/data/communes.json, see docs/configuration.md)")
