"""Every setting, read from the environment in this one place and validated at start-up.

A bad value fails fast with a message naming the variable. Nothing else in the package reads
``os.environ``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting has a value Sluice cannot use; the message names the variable."""


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a whole number > 0")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError("must be >= 0")
    return number


def _at_least(minimum: float) -> Callable[[str], float]:
    """A number of seconds with a floor: 0 would turn a background loop into a busy spin."""

    def cast(value: str) -> float:
        number = float(value)
        if not number >= minimum:  # also refuses NaN
            raise ValueError(f"must be a number of seconds >= {minimum:g}")
        return number

    return cast


def _choice(*allowed: str) -> Callable[[str], str]:
    def cast(value: str) -> str:
        lowered = value.lower()
        if lowered not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return lowered

    return cast


def _redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


def _master_keys(value: str) -> tuple[bytes, ...]:
    keys = []
    for part in value.split(","):
        raw = base64.b64decode(part.strip(), validate=True)
        if len(raw) != 32:
            raise ValueError("each key must be base64 of exactly 32 bytes")
        keys.append(raw)
    return tuple(keys)


def _public_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL, e.g. https://gateway.example.com")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not hold a query, a fragment or credentials")
    return value.strip().rstrip("/")


# (name, default, cast, help) — docs/settings.md lists every one; a test checks that.
SETTINGS: tuple[tuple[str, str | None, Callable[[str], object], str], ...] = (
    ("data_dir", "./data", str, "Data directory: SQLite database and master key file."),
    ("database_url", None, str, "sqlite:///PATH or postgresql://... (default: SQLite in the data dir)."),
    ("redis_url", None, _redis_url,
     "redis://host:port/db: rate limits and the response cache shared by every process using it."),
    ("rate_limit_on_redis_error", "allow", _choice("allow", "deny"),
     "While Redis cannot be reached: allow (limits not enforced) or deny (limited requests get 429)."),
    ("redis_timeout_s", "0.25", _at_least(0.01), "Redis connect and reply timeout (seconds)."),
    ("redis_key_prefix", "sluice:", str, "Prefix of every Redis key (several clusters can share one Redis)."),
    ("master_key", None, _master_keys,
     "Base64 32-byte key-encryption key(s), comma-separated, active first."),
    ("bootstrap_token", None, str, "At init, use this value as the admin API token (must start sluice_)."),
    ("log_level", "info", _choice("debug", "info", "warning", "error"), "Process log level."),
    ("log_format", "text", _choice("text", "json"), "Process log format."),
    ("max_body_bytes", str(25 * 1024 * 1024), _positive_int, "Largest request body accepted (bytes)."),
    ("upstream_connect_timeout_s", "10", _non_negative_float, "Upstream connect timeout (seconds)."),
    ("upstream_first_byte_timeout_s", "120", _non_negative_float, "Upstream time to first byte (seconds)."),
    ("change_poll_interval_s", "0.5", _at_least(0.05), "How often other processes' changes are picked up."),
    ("log_body_max_bytes", str(64 * 1024), _positive_int, "Request/response bytes kept in a stored log."),
    ("log_flush_interval_s", "0.2", _at_least(0.01), "How often buffered request logs are written."),
    ("metrics_token", None, str, "When set, GET /metrics requires Authorization: Bearer <this value>."),
    ("log_buffer_max_bytes", str(16 * 1024 * 1024), _positive_int,
     "Request logs held in memory before dropping (bytes)."),
    ("cache_max_bytes", str(64 * 1024 * 1024), _positive_int, "In-memory response cache size (bytes, LRU)."),
    ("public_url", None, _public_url, "Public base URL of this gateway, for gateway URLs the API returns "
                                      "(default: taken from the request's Host)."),
    ("header_max_bytes", str(64 * 1024), _positive_int,
     "Largest request line plus headers (bytes); more: 431."),
    ("header_max_count", "100", _positive_int, "Most request headers accepted; more: 431."),
    ("header_timeout_s", "10", _at_least(0.5), "Time a client has to send the request line and headers."),
    ("body_timeout_s", "30", _at_least(0.5), "Longest pause while a request body arrives (seconds)."),
    ("keep_alive_timeout_s", "5", _positive_int,
     "Idle keep-alive connections are closed after (whole seconds)."),
    ("max_connections", "4096", _positive_int,
     "Open client connections per process; more are refused (503)."),
    ("console", "on", _choice("on", "off"), "Serve the web console at /console/ (on or off)."),
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./data")
    database_url: str = ""
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    rate_limit_on_redis_error: str = "allow"
    redis_timeout_s: float = 0.25
    redis_key_prefix: str = "sluice:"
    master_key: tuple[bytes, ...] = field(default=(), repr=False)
    bootstrap_token: str | None = field(default=None, repr=False)
    log_level: str = "info"
    log_format: str = "text"
    max_body_bytes: int = 25 * 1024 * 1024
    upstream_connect_timeout_s: float = 10.0
    upstream_first_byte_timeout_s: float = 120.0
    change_poll_interval_s: float = 0.5
    log_body_max_bytes: int = 64 * 1024
    log_flush_interval_s: float = 0.2
    metrics_token: str | None = field(default=None, repr=False)
    log_buffer_max_bytes: int = 16 * 1024 * 1024
    cache_max_bytes: int = 64 * 1024 * 1024
    public_url: str | None = None  # without a trailing slash
    header_max_bytes: int = 64 * 1024
    header_max_count: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_timeout_s: int = 5
    max_connections: int = 4096
    console: str = "on"
    upstream_overrides: Mapping[str, str] = field(default_factory=dict)
    # Set by `sluice serve --workers N` (not a user setting): prometheus-client's multiprocess dir.
    metrics_multiprocess_dir: Path | None = None

    @property
    def key_file(self) -> Path:
        return self.data_dir / "master.key"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build Settings from the environment (prefix ``SLUICE_``); keyword overrides win (CLI flags)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, default, cast, _help in SETTINGS:
        variable = f"SLUICE_{name.upper()}"
        raw = env.get(variable, default)
        if name in overrides and overrides[name] is not None:
            raw = str(overrides[name])
        if raw is None:
            continue
        try:
            values[name] = cast(raw)
        except (ValueError, TypeError) as exc:
            # Library messages may quote the value, and a value may be a secret: never echo it.
            # (A value under 4 characters is no secret, and "0" is in "must be >= 0.05".)
            echoes = len(raw) >= 4 and raw in str(exc)
            reason = f"not a valid value (expected {_help})" if echoes else str(exc)
            raise SettingsError(f"{variable}: {reason}") from None
    data_dir = Path(str(values.pop("data_dir"))).expanduser().resolve()
    database_url = str(values.pop("database_url", "") or f"sqlite:///{data_dir / 'sluice.db'}")
    if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        raise SettingsError("SLUICE_DATABASE_URL: must start with sqlite:/// or postgresql://")
    token = values.get("bootstrap_token")
    if token is not None and (not str(token).startswith("sluice_") or len(str(token)) < 40):
        raise SettingsError("SLUICE_BOOTSTRAP_TOKEN: must start with sluice_ and be at least 40 characters")
    own = {f"SLUICE_{name.upper()}" for name, *_ in SETTINGS}  # e.g. SLUICE_UPSTREAM_CONNECT_TIMEOUT_S
    upstream = {
        key[len("SLUICE_UPSTREAM_"):].lower().replace("_", "-"): value.rstrip("/")
        for key, value in env.items()
        if key.startswith("SLUICE_UPSTREAM_") and key not in own and value
    }
    for slug, url in upstream.items():
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"SLUICE_UPSTREAM_{slug.upper().replace('-', '_')}: must be an http(s) URL")
    multiprocess_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or None
    return Settings(data_dir=data_dir, database_url=database_url, upstream_overrides=upstream,
                    metrics_multiprocess_dir=Path(multiprocess_dir) if multiprocess_dir else None,
                    **values)  # type: ignore[arg-type]
