"""Settings are validated at start-up and errors name the variable."""

import pytest

from sluice.settings import SettingsError, load_settings


def test_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings({"SLUICE_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path}/sluice.db"
    assert settings.max_body_bytes == 25 * 1024 * 1024


def test_upstream_overrides_do_not_swallow_own_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings({"SLUICE_DATA_DIR": str(tmp_path), "SLUICE_UPSTREAM_CONNECT_TIMEOUT_S": "5",
                              "SLUICE_UPSTREAM_GOOGLE_AI_STUDIO": "http://127.0.0.1:9/x/"})
    assert settings.upstream_connect_timeout_s == 5
    assert settings.upstream_overrides == {"google-ai-studio": "http://127.0.0.1:9/x"}


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SLUICE_MAX_BODY_BYTES", "lots"),
        ("SLUICE_MAX_BODY_BYTES", "-1"),
        ("SLUICE_LOG_LEVEL", "loud"),
        ("SLUICE_MASTER_KEY", "not-base64!"),
        ("SLUICE_MASTER_KEY", "c2hvcnQ="),
        ("SLUICE_DATABASE_URL", "mysql://x"),
        ("SLUICE_BOOTSTRAP_TOKEN", "abc"),
        ("SLUICE_UPSTREAM_OPENAI", "ftp://x"),
        ("SLUICE_REDIS_URL", "http://127.0.0.1:6379"),
    ],
)
def test_bad_values_fail_naming_the_variable(tmp_path, variable: str, value: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError) as info:
        load_settings({"SLUICE_DATA_DIR": str(tmp_path), variable: value})
    assert variable in str(info.value)
    assert value not in str(info.value) or len(value) < 4  # never echo a (possibly secret) value at length


def test_repr_hides_secrets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import base64

    key = base64.b64encode(b"k" * 32).decode()
    settings = load_settings({"SLUICE_DATA_DIR": str(tmp_path), "SLUICE_MASTER_KEY": key,
                              "SLUICE_BOOTSTRAP_TOKEN": "sluice_" + "x" * 40})
    assert key not in repr(settings) and "x" * 40 not in repr(settings)
