"""Settings, read once from the environment into a typed, immutable value.

Everything else receives a `Settings` instead of reading `os.environ` itself, so tests can build
as many differently-configured apps as they like in one process, and secrets are wrapped in
`Secret`, whose repr never shows the value (so a logged settings object leaks nothing).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "sqlite:///fundgoal.db"
STRIPE_DEFAULT_API_BASE = "https://api.stripe.com"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


class Secret:
    """A string that never prints: `str()`/`repr()` show a mask, `.reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, raw: str, *, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _seconds(name: str, raw: str, *, minimum: float = 0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= minimum or value == float("inf"):  # also refuses nan
        raise ConfigError(f"{name} must be a finite number of seconds, at least {minimum:g}")
    return value


def _url(name: str, raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, not {raw!r}")
    return raw.rstrip("/")


@dataclass(frozen=True)
class DatabaseTimeouts:
    """Every wait on the database has an end (README, "Bounded waits"). Seconds; 0 disables
    the server-side ones. The defaults keep a request's database step under about 22 s
    (pool + connect + call) even when the server or the path to it freezes without a reset."""

    # A new connection (TCP, TLS, authentication) that takes longer is given up.
    connect: float = 5.0
    # Waiting for a free connection of this worker's pool.
    pool: float = 5.0
    # PostgreSQL cancels a statement running longer; no request-path query comes close.
    statement: float = 10.0
    # PostgreSQL gives up waiting for a row or table lock: a webhook queued behind a stuck
    # transaction answers 503 (Stripe retries) instead of hanging.
    lock: float = 5.0
    # PostgreSQL ends a session idle inside a transaction this long (one whose client froze
    # or vanished mid-transaction), releasing its locks; our own code never idles in one.
    idle_in_transaction: float = 10.0
    # The application's own bound on one database round trip: past it the connection's
    # socket is shut down from a watchdog thread and the request answers 503. It covers what
    # the server cannot (a frozen server, a path that swallows packets); a little above the
    # statement timeout so that a slow but living server reports its own error first.
    call: float | None = 12.0
    # TCP keepalive idle time, both ends: a dead peer on an idle connection is noticed
    # within about twice this.
    keepalive: int = 10

    @property
    def step(self) -> float:
        """The longest one database step of a request can take, whatever the database does:
        a free connection, a new one, one round trip (60 s stands in for no call limit)."""
        return self.pool + self.connect + (self.call or 60.0)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: Secret = field(default_factory=lambda: Secret(""))
    public_url: str = "http://127.0.0.1:8000"
    env: str = "development"
    stripe_secret_key: Secret = field(default_factory=lambda: Secret(""))
    stripe_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    stripe_api_base: str = STRIPE_DEFAULT_API_BASE
    # A CDN absorbs bursts; a donor sees their gift within one refresh.
    widget_cache_seconds: int = 15
    widget_stale_seconds: int = 60
    # How often a worker asks the database whether another worker changed a total; the
    # freshness promise across workers is one second.
    snapshot_check_seconds: float = 0.5
    default_locale: str = "en"
    # Who may frame /embed/{slug}: a CSP frame-ancestors source list ("*" = any site).
    embed_frame_ancestors: str = "*"
    log_json: bool = False
    # Per worker process: each worker has its own pool, so the server sees
    # workers x (db_pool_size + db_max_overflow) connections at most (README, Deployment).
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_timeouts: DatabaseTimeouts = field(default_factory=DatabaseTimeouts)
    # /readyz answers 503 once the widget snapshot has not been confirmed by the database for
    # this long (at least three polls), i.e. when the bars may be showing an old total.
    snapshot_max_age_seconds: float = 5.0
    # Where the last good widget snapshot is kept, for a worker started while the database is
    # away: "" = next to the SQLite file (load_settings gives PostgreSQL a file in the state
    # directory), "off" = not kept.
    snapshot_file: str = ""

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def test_mode_payments(self) -> bool:
        """No Stripe key outside production: donations go through the local test checkout."""
        return not self.stripe_secret_key and not self.production

    def snapshot_path(self) -> Path | None:
        """The snapshot file: explicit, else next to the SQLite database (load_settings gives
        PostgreSQL its default, default_snapshot_file)."""
        if self.snapshot_file == "off":
            return None
        if self.snapshot_file:
            return Path(self.snapshot_file)
        if self.is_sqlite:
            database = self.database_url.split("///", 1)[-1].split("?", 1)[0]
            return Path(database).resolve().parent / "fundgoal-snapshot.json"
        return None

    def production_problems(self) -> list[str]:
        """One line per thing production refuses to start without (the schema is checked by db)."""
        problems = []
        if not self.secret_key:
            problems.append("FUNDGOAL_SECRET_KEY is not set")
        elif len(self.secret_key.reveal()) < 32:
            problems.append("FUNDGOAL_SECRET_KEY is shorter than 32 characters")
        if not self.stripe_secret_key:
            problems.append("STRIPE_SECRET_KEY is not set")
        if not self.stripe_webhook_secret:
            problems.append("STRIPE_WEBHOOK_SECRET is not set")
        if not self.public_url.startswith("https://"):
            problems.append("FUNDGOAL_PUBLIC_URL must be an https:// URL in production")
        return problems

    def signing_key(self) -> str:
        """The key that signs sessions and CSRF tokens.

        Outside production an unset key falls back to a fixed development key so the demo runs
        with no setup; production refuses to start without a real one (production_problems).
        """
        return self.secret_key.reveal() or "fundgoal-development-key-not-for-production"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment once. Raises ConfigError naming the bad variable."""
    env = os.environ if environ is None else environ
    mode = env.get("FUNDGOAL_ENV", "development").strip().lower() or "development"
    if mode not in {"development", "production", "test"}:
        raise ConfigError(f"FUNDGOAL_ENV must be development, test or production, not {mode!r}")
    database_url = env.get("FUNDGOAL_DATABASE_URL", DEFAULT_DATABASE_URL).strip()
    if not (database_url.startswith("sqlite") or database_url.startswith("postgresql")):
        raise ConfigError("FUNDGOAL_DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL")
    if database_url.startswith("postgresql://") or database_url.startswith("postgres://"):
        # SQLAlchemy's bare postgresql:// means psycopg2, which we do not ship.
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
    return Settings(
        database_url=database_url,
        secret_key=Secret(env.get("FUNDGOAL_SECRET_KEY", "")),
        public_url=_url(
            "FUNDGOAL_PUBLIC_URL", env.get("FUNDGOAL_PUBLIC_URL", "http://127.0.0.1:8000")
        ),
        env=mode,
        stripe_secret_key=Secret(env.get("STRIPE_SECRET_KEY", "")),
        stripe_webhook_secret=Secret(env.get("STRIPE_WEBHOOK_SECRET", "")),
        stripe_api_base=_url(
            "STRIPE_API_BASE", env.get("STRIPE_API_BASE", STRIPE_DEFAULT_API_BASE)
        ),
        widget_cache_seconds=_int(
            "FUNDGOAL_WIDGET_CACHE_SECONDS", env.get("FUNDGOAL_WIDGET_CACHE_SECONDS", "15")
        ),
        widget_stale_seconds=_int(
            "FUNDGOAL_WIDGET_STALE_SECONDS", env.get("FUNDGOAL_WIDGET_STALE_SECONDS", "60")
        ),
        default_locale=env.get("FUNDGOAL_DEFAULT_LOCALE", "en"),
        embed_frame_ancestors=env.get("FUNDGOAL_EMBED_FRAME_ANCESTORS", "*"),
        log_json=_bool("FUNDGOAL_LOG_JSON", env.get("FUNDGOAL_LOG_JSON", "false")),
        db_pool_size=_int(
            "FUNDGOAL_DB_POOL_SIZE", env.get("FUNDGOAL_DB_POOL_SIZE", "5"), minimum=1
        ),
        db_max_overflow=_int("FUNDGOAL_DB_MAX_OVERFLOW", env.get("FUNDGOAL_DB_MAX_OVERFLOW", "10")),
        db_timeouts=_database_timeouts(env),
        snapshot_max_age_seconds=_seconds(
            "FUNDGOAL_SNAPSHOT_MAX_AGE_SECONDS",
            env.get("FUNDGOAL_SNAPSHOT_MAX_AGE_SECONDS", "5"),
            minimum=0.1,
        ),
        snapshot_file=env.get("FUNDGOAL_SNAPSHOT_FILE", "").strip()
        or default_snapshot_file(database_url, env),
    )


def default_snapshot_file(database_url: str, env: Mapping[str, str]) -> str:
    """PostgreSQL's default snapshot file, in the state directory ($STATE_DIRECTORY under
    systemd, else $XDG_STATE_HOME/fundgoal or ~/.local/state/fundgoal), named after the
    server and database so two installations never share one. SQLite's sits beside its file."""
    if database_url.startswith("sqlite"):
        return ""
    state = env.get("STATE_DIRECTORY", "").split(":")[0]
    if not state:
        xdg = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        state = str(Path(xdg) / "fundgoal")
    parts = urlsplit(database_url)
    where = f"{parts.hostname}:{parts.port}{parts.path}"  # never the password
    digest = hashlib.blake2b(where.encode(), digest_size=6).hexdigest()
    return str(Path(state) / f"snapshot-{digest}.json")


def _database_timeouts(env: Mapping[str, str]) -> DatabaseTimeouts:
    default = DatabaseTimeouts()

    def read(name: str, value: float, minimum: float) -> float:
        variable = f"FUNDGOAL_DB_{name}"
        return _seconds(variable, env.get(variable, f"{value:g}"), minimum=minimum)

    call = read("CALL_TIMEOUT", default.call or 0, 0)
    return DatabaseTimeouts(
        # psycopg (like libpq) waits at least 2 s for a connection.
        connect=read("CONNECT_TIMEOUT", default.connect, 2),
        pool=read("POOL_TIMEOUT", default.pool, 0.1),
        statement=read("STATEMENT_TIMEOUT", default.statement, 0),
        lock=read("LOCK_TIMEOUT", default.lock, 0),
        idle_in_transaction=read("IDLE_IN_TRANSACTION_TIMEOUT", default.idle_in_transaction, 0),
        call=call or None,  # 0 = no application-side bound (not advised)
        keepalive=_int(
            "FUNDGOAL_DB_KEEPALIVE_SECONDS",
            env.get("FUNDGOAL_DB_KEEPALIVE_SECONDS", str(default.keepalive)),
            minimum=1,
        ),
    )
