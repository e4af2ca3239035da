"""The provider catalog (``catalog.toml``) turned into immutable ``Provider`` objects.

Providers are data: adding one is a TOML table, not code. This module only knows how to validate
that data and how to build an upstream URL from a gateway path. It never reads the environment;
``SLUICE_UPSTREAM_<SLUG>`` overrides arrive already parsed (see ``sluice.settings``).
"""

from __future__ import annotations

import calendar
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from typing import Any

USAGE_FORMATS = frozenset({"openai", "anthropic", "google", "cohere", "none"})
_KNOWN_KEYS = frozenset(
    {
        "base_url", "auth_header", "auth_scheme", "alt_auth", "extra_headers", "usage_format", "stored_keys",
        "path_template", "path_lookup", "path_defaults", "path_rewrite", "base_url_when",
        "compat", "compat_chat_path", "compat_stream_path", "compat_embeddings_path", "models",
        "embedding_models", "models_reviewed",
    }
)
COMPAT_FORMATS = frozenset({"passthrough", "anthropic", "gemini"})
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_HOST_VALUE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})")
_PATH_VALUE = re.compile(r"[A-Za-z0-9._~-]+")
_HEADER_NAME = re.compile(r"[a-z0-9!#$%&'*+.^_`|~-]+")


class CatalogError(ValueError):
    """A catalog entry is unusable; the message names the slug."""


@dataclass(frozen=True, slots=True)
class Compat:
    """How ``/compat`` (OpenAI's API) reaches one provider (see the comment atop catalog.toml)."""

    format: str  # passthrough | anthropic | gemini
    chat_path: str  # under base_url; may hold {model}
    stream_path: str  # the same, for a streamed chat (usually chat_path)
    embeddings_path: str | None  # None: no embeddings through /compat
    models: tuple[str, ...]  # listed by /compat/models; any other model name may still be called
    embedding_models: tuple[str, ...]
    models_reviewed: int  # epoch seconds of the day the lists were checked: "created" of each listing


@dataclass(frozen=True, slots=True)
class Provider:
    slug: str
    base_url: str  # the effective base (override applied); may hold {placeholders} when not overridden
    auth_header: str  # lower-case header name
    auth_scheme: str  # value prefix, e.g. "Bearer ", "Token ", or ""
    extra_headers: tuple[tuple[str, str], ...]  # lower-case names; add only when the caller did not
    usage_format: str
    stored_keys: bool
    overridden: bool  # True when base_url came from SLUICE_UPSTREAM_<SLUG>
    alt_auth: tuple[tuple[str, str], ...] = ()  # (header, scheme): other headers a caller's key may use
    # Template rules (see the comment at the top of catalog.toml).
    path_template: tuple[str, ...] = ()
    path_lookup: tuple[tuple[str, str], ...] = ()
    path_defaults: tuple[tuple[str, str], ...] = ()
    path_rewrite: tuple[tuple[str, str], ...] = ()
    base_url_when: tuple[tuple[str, str, str], ...] = ()  # (name, value, base)
    compat: Compat | None = None  # how /compat reaches the provider; None = not served there
    # An account's custom provider (providers/custom.py): a stored key is optional (its extra headers
    # may carry the credential, or it needs none) and extra_headers go on every request.
    custom: bool = False
    _auth_names: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Read on every request: built once.
        object.__setattr__(self, "_auth_names", (self.auth_header, *(name for name, _ in self.alt_auth)))

    def auth_value(self, key: str) -> str:
        """The auth header value for a stored key, e.g. ``"Bearer sk-..."``."""
        return f"{self.auth_scheme}{key}"

    @property
    def auth_header_names(self) -> tuple[str, ...]:
        """Every header a caller's key may arrive in, ``auth_header`` first.

        When a stored key is used, all of them are to be removed from the forwarded request.
        """
        return self._auth_names

    def strip_scheme(self, value: str, header: str | None = None) -> str:
        """The bare key of an auth header value (that header's scheme removed, case-insensitively)."""
        scheme = self.auth_scheme
        if header not in (None, self.auth_header):
            scheme = dict(self.alt_auth).get(header, "")
        value, scheme = value.strip(), scheme.strip()
        if scheme and value[: len(scheme)].lower() == scheme.lower():
            return value[len(scheme):].strip()
        return value

    def credential_header(self, headers: Mapping[str, str]) -> tuple[str, str] | None:
        """``(header name, raw value)`` of the caller's own key, or None when absent or empty.

        ``auth_header`` is looked at first, then ``alt_auth`` headers. A value that is only the
        scheme (``"Bearer "``) counts as empty, like a missing header.
        """
        for name in self.auth_header_names:
            value = headers.get(name)
            if value and self.strip_scheme(value, name):
                return name, value
        return None

    def upstream_url(self, path: str, query: str, account_id: str) -> str:
        """Where to send a gateway request; ValueError (with a readable reason) when it cannot be built.

        ``path`` is everything after ``/{slug}/`` (no leading slash), ``query`` the raw query string.
        Overridden bases are used verbatim; consumed/rewritten path rules still apply.
        """
        if not isinstance(path, str) or not isinstance(query, str):
            raise ValueError("path and query must be strings")
        values: dict[str, str] = {}
        rest = path
        if self.path_template:
            rest = self._consume(rest, values)
        for prefix, replacement in self.path_rewrite:
            if rest.startswith(prefix):
                rest = replacement + rest[len(prefix):]
                break
        base = self.base_url if self.overridden else self._expand_base(path, values, account_id)
        url = f"{base}/{rest}" if rest else base
        return f"{url}?{query}" if query else url

    def _consume(self, rest: str, values: dict[str, str]) -> str:
        parts = rest.split("/", len(self.path_template))
        expected = "/".join(self.path_template)
        if len(parts) < len(self.path_template):
            raise ValueError(f"{self.slug}: the path must start with {expected}/")
        for pattern, segment in zip(self.path_template, parts, strict=False):  # parts may go on
            if pattern.startswith("{"):
                if not segment:
                    raise ValueError(f"{self.slug}: the path must start with {expected}/ ({pattern} empty)")
                values[pattern[1:-1]] = segment
            elif segment != pattern:
                raise ValueError(f"{self.slug}: the path must start with {expected}/")
        return parts[len(self.path_template)] if len(parts) > len(self.path_template) else ""

    def _expand_base(self, path: str, values: dict[str, str], account_id: str) -> str:
        if self.path_lookup:
            segments = path.split("?", 1)[0].split("/")
            for name, marker in self.path_lookup:
                for index, segment in enumerate(segments[:-1]):
                    if segment == marker and segments[index + 1]:
                        values[name] = segments[index + 1]
                        break
        for name, default in self.path_defaults:
            values.setdefault(name, default)
        values["account_id"] = account_id if isinstance(account_id, str) else ""
        for name, value, base in self.base_url_when:
            if values.get(name) == value:
                return base
        host_end = self.base_url.find("/", self.base_url.find("://") + 3)
        host_end = len(self.base_url) if host_end < 0 else host_end

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            value = values.get(name, "")
            pattern = _HOST_VALUE if match.start() < host_end else _PATH_VALUE
            if not pattern.fullmatch(value):
                raise ValueError(f"{self.slug}: {name} {value[:64]!r} is missing or not allowed in a URL")
            return value

        return _PLACEHOLDER.sub(substitute, self.base_url)


def override_env_name(slug: str) -> str:
    """The environment variable that overrides a provider's base URL."""
    return "SLUICE_UPSTREAM_" + slug.upper().replace("-", "_")


def _raw_catalog() -> dict[str, Any]:
    with resources.files(__package__).joinpath("catalog.toml").open("rb") as fh:
        return tomllib.load(fh)


def _str_table(slug: str, key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CatalogError(f"provider {slug!r}: {key} must be a table of strings")
    return value


def _provider(slug: str, entry: Any, override: str | None) -> Provider:
    """Validate one catalog table; every problem names the slug."""
    if not isinstance(entry, dict):
        raise CatalogError(f"provider {slug!r}: must be a table")
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise CatalogError(f"provider {slug!r}: unknown keys {sorted(unknown)}")
    for key in ("base_url", "auth_header", "auth_scheme", "usage_format"):
        if not isinstance(entry.get(key), str):
            raise CatalogError(f"provider {slug!r}: {key} is required and must be a string")
    base_url, auth_header = entry["base_url"].rstrip("/"), entry["auth_header"]
    if not base_url.startswith(("https://", "http://")):
        raise CatalogError(f"provider {slug!r}: base_url must be an http(s) URL")
    if not _HEADER_NAME.fullmatch(auth_header):
        raise CatalogError(f"provider {slug!r}: auth_header must be a lower-case header name")
    if entry["usage_format"] not in USAGE_FORMATS:
        raise CatalogError(f"provider {slug!r}: usage_format must be one of {sorted(USAGE_FORMATS)}")
    stored_keys = entry.get("stored_keys", True)
    if not isinstance(stored_keys, bool):
        raise CatalogError(f"provider {slug!r}: stored_keys must be true or false")
    extra = _str_table(slug, "extra_headers", entry.get("extra_headers", {}))
    if not all(_HEADER_NAME.fullmatch(name) for name in extra):
        raise CatalogError(f"provider {slug!r}: extra_headers names must be lower-case header names")
    alt_auth = _str_table(slug, "alt_auth", entry.get("alt_auth", {}))
    if not all(_HEADER_NAME.fullmatch(name) and name != auth_header for name in alt_auth):
        raise CatalogError(f"provider {slug!r}: alt_auth names must be lower-case headers other than "
                           "auth_header")
    template = entry.get("path_template", "")
    if not isinstance(template, str):
        raise CatalogError(f"provider {slug!r}: path_template must be a string")
    segments = tuple(s for s in template.split("/") if s)
    lookup = _str_table(slug, "path_lookup", entry.get("path_lookup", {}))
    defaults = _str_table(slug, "path_defaults", entry.get("path_defaults", {}))
    rewrite = entry.get("path_rewrite", [])
    if not isinstance(rewrite, list) or not all(
        isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r) for r in rewrite
    ):
        raise CatalogError(f"provider {slug!r}: path_rewrite must be a list of [from, to] string pairs")
    when = []
    for condition, alt_base in _str_table(slug, "base_url_when", entry.get("base_url_when", {})).items():
        name, sep, value = condition.partition("=")
        if not sep or not alt_base.startswith(("https://", "http://")):
            raise CatalogError(f"provider {slug!r}: base_url_when needs \"name=value\" = \"http(s) URL\"")
        when.append((name, value, alt_base.rstrip("/")))
    known = {s[1:-1] for s in segments if s.startswith("{")} | set(lookup) | {"account_id"}
    missing = set(_PLACEHOLDER.findall(base_url)) - known
    if missing or "{" in _PLACEHOLDER.sub("", base_url) or "}" in _PLACEHOLDER.sub("", base_url):
        raise CatalogError(f"provider {slug!r}: base_url has placeholders nothing fills: {sorted(missing)}")
    if override is not None and not override.startswith(("https://", "http://")):
        raise CatalogError(f"{override_env_name(slug)}: must be an http(s) URL")
    return Provider(
        slug=slug,
        base_url=override.rstrip("/") if override is not None else base_url,
        auth_header=auth_header,
        auth_scheme=entry["auth_scheme"],
        extra_headers=tuple(extra.items()),
        usage_format=entry["usage_format"],
        stored_keys=stored_keys,
        overridden=override is not None,
        alt_auth=tuple(alt_auth.items()),
        path_template=segments,
        path_lookup=tuple(lookup.items()),
        path_defaults=tuple(defaults.items()),
        path_rewrite=tuple((a, b) for a, b in rewrite),
        base_url_when=tuple(when),
        compat=_compat(slug, entry),
    )


def _strings(slug: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CatalogError(f"provider {slug!r}: {key} must be a list of non-empty strings")
    return tuple(value)


def _compat(slug: str, entry: Mapping[str, Any]) -> Compat | None:
    kind = entry.get("compat")
    keys = ("compat_chat_path", "compat_stream_path", "compat_embeddings_path", "models",
            "embedding_models", "models_reviewed")
    if kind is None:
        if any(key in entry for key in keys):
            raise CatalogError(f"provider {slug!r}: {sorted(k for k in keys if k in entry)} need compat")
        return None
    if kind not in COMPAT_FORMATS:
        raise CatalogError(f"provider {slug!r}: compat must be one of {sorted(COMPAT_FORMATS)}")
    paths = {}
    for key in ("compat_chat_path", "compat_stream_path", "compat_embeddings_path"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value or value.startswith("/")
                                  or set(_PLACEHOLDER.findall(value)) - {"model"}):
            raise CatalogError(f"provider {slug!r}: {key} must be a relative path ({{model}} the only "
                               "placeholder)")
        paths[key] = value
    if paths["compat_chat_path"] is None:
        raise CatalogError(f"provider {slug!r}: compat needs compat_chat_path")
    reviewed = entry.get("models_reviewed")
    if reviewed is not None and not isinstance(reviewed, date):
        raise CatalogError(f"provider {slug!r}: models_reviewed must be a date (2026-11-29)")
    return Compat(
        format=kind,
        chat_path=paths["compat_chat_path"],
        stream_path=paths["compat_stream_path"] or paths["compat_chat_path"],
        embeddings_path=paths["compat_embeddings_path"],
        models=_strings(slug, "models", entry.get("models", [])),
        embedding_models=_strings(slug, "embedding_models", entry.get("embedding_models", [])),
        models_reviewed=calendar.timegm(reviewed.timetuple()) if reviewed is not None else 0,
    )


def parse_catalog(data: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Provider]:
    """Validate a catalog mapping (the parsed TOML). Overrides for unknown slugs are ignored."""
    return {slug: _provider(slug, entry, overrides.get(slug) or None) for slug, entry in sorted(data.items())}


def load_catalog(overrides: Mapping[str, str]) -> dict[str, Provider]:
    """Every provider of the bundled catalog, with ``slug -> base url`` overrides applied."""
    return parse_catalog(_RAW, overrides)


_RAW = _raw_catalog()
CATALOG_SLUGS: tuple[str, ...] = tuple(sorted(_RAW))
parse_catalog(_RAW, {})  # a broken bundled catalog fails at import, naming the slug
