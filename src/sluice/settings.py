"""Every setting, read from the environment in this one place and validated at start-up.

A bad value fails fast with a message naming the variable. Nothing else in the package reads
``os.environ``.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping


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


# (name, default, cast, help) — docs/settings.md lists every one; a test checks that.
SETTINGS: tuple[tuple[str, str | None, Callable[[str], object], str], ...] = (
    ("data_dir", "./data", str, "Data directory: SQLite database and master key file."),
    ("database_url", None, str, "sqlite:///PATH or postgresql://... (default: SQLite in the data dir)."),
    ("redis_url", None, _redis_url, "redis://... shared by every process: the response cache (rate limits: see docs)."),
    ("master_key", None, _master_keys, "Base64 32-byte key-encryption key(s), comma-separated, active first."),
    ("bootstrap_token", None, str, "At init, use this value as the admin API token (must start sluice_)."),
    ("log_level", "info", _choice("debug", "info", "warning", "error"), "Process log level."),
    ("log_format", "text", _choice("text", "json"), "Process log format."),
    ("max_body_bytes", str(25 * 1024 * 1024), _positive_int, "Largest request body accepted (bytes)."),
    ("upstream_connect_timeout_s", "10", _non_negative_float, "Upstream connect timeout (seconds)."),
    ("upstream_first_byte_timeout_s", "120", _non_negative_float, "Upstream time to first byte (seconds)."),
    ("change_poll_interval_s", "0.5", _non_negative_float, "How often other processes' changes are picked up."),
    ("log_body_max_bytes", str(64 * 1024), _positive_int, "Request/response bytes kept in a stored log."),
    ("log_flush_interval_s", "0.2", _non_negative_float, "How often buffered request logs are written."),
    ("metrics_token", None, str, "When set, GET /metrics requires Authorization: Bearer <this value>."),
    ("log_buffer_max_bytes", str(16 * 1024 * 1024), _positive_int, "Request logs held in memory before dropping (bytes)."),
    ("cache_max_bytes", str(64 * 1024 * 1024), _positive_int, "In-memory response cache size (bytes, LRU)."),
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("./data")
    database_url: str = ""
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
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
    upstream_overrides: Mapping[str, str] = field(default_factory=dict)

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
            reason = str(exc) if raw not in str(exc) else f"not a valid value (expected {_help})"
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
    return Settings(data_dir=data_dir, database_url=database_url, upstream_overrides=upstream, **values)  # type: ignore[arg-type]
