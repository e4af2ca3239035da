"""Envelope encryption and the key file, without a server."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from sluice.errors import CryptoError
from sluice.secrets.crypto import Keyring, associated_data, preview
from sluice.secrets.keyfile import create_key_file, load_keyring, write_key_file
from sluice.settings import load_settings

AAD = associated_data("a" * 32, "s" * 32, "x" * 32)


@pytest.mark.parametrize("length", range(1, 130))
def test_preview_shows_at_most_8_chars_and_a_quarter(length: int) -> None:
    secret = "".join(chr(0x41 + (i * 7) % 26) for i in range(length))
    shown = preview(secret)
    visible = shown.replace("…", "").replace("*", "")
    assert len(visible) <= 8 and len(visible) <= length // 4
    if visible:
        head, _, tail = shown.partition("…")
        assert secret.startswith(head) and secret.endswith(tail)


def test_seal_open_and_tamper() -> None:
    ring = Keyring((os.urandom(32),))
    sealed = ring.seal(b"sk-plain", AAD)
    assert b"sk-plain" not in sealed.ciphertext + sealed.wrapped_key
    assert ring.open(sealed, AAD) == b"sk-plain"
    assert ring.seal(b"sk-plain", AAD).ciphertext != sealed.ciphertext, "fresh data key and nonce each time"
    with pytest.raises(CryptoError):
        ring.open(sealed, associated_data("a" * 32, "s" * 32, "y" * 32))
    flipped = bytearray(sealed.ciphertext)
    flipped[-1] ^= 1
    with pytest.raises(CryptoError):
        ring.open(type(sealed)(sealed.kek_id, sealed.wrapped_key, bytes(flipped)), AAD)


def test_rewrap_moves_to_the_active_key_without_touching_the_ciphertext() -> None:
    old = os.urandom(32)
    sealed = Keyring((old,)).seal(b"value", AAD)
    both = Keyring((os.urandom(32), old))
    moved = both.rewrap(sealed, AAD)
    assert moved.kek_id == both.active_id != sealed.kek_id and moved.ciphertext == sealed.ciphertext
    assert both.open(moved, AAD) == b"value"
    with pytest.raises(CryptoError):
        Keyring((old,)).open(moved, AAD)


def test_keys_never_in_repr() -> None:
    key = os.urandom(32)
    ring = Keyring((key,))
    shown = repr(ring)
    assert key.hex() not in shown and base64.b64encode(key).decode() not in shown and str(key) not in shown
    settings = load_settings({"SLUICE_MASTER_KEY": base64.b64encode(key).decode()})
    assert base64.b64encode(key).decode() not in repr(settings)


def test_key_file_mode_is_enforced(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    create_key_file(settings.key_file)
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    assert len(load_keyring(settings).keys) == 1
    settings.key_file.chmod(0o644)
    with pytest.raises(PermissionError):
        load_keyring(settings)


def test_key_file_keeps_order_active_first(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    keys = (os.urandom(32), os.urandom(32))
    write_key_file(settings.key_file, keys)
    assert load_keyring(settings).keys == keys
    settings.key_file.write_text("bm90IGEga2V5\n")
    settings.key_file.chmod(0o600)
    with pytest.raises(ValueError):
        load_keyring(settings)
