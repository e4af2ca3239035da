"""Envelope encryption, pure: no storage, no environment.

Each secret value gets its own random 256-bit data key (AES-256-GCM, random 96-bit nonce). The
data key is wrapped by a key-encryption key (KEK) that carries an id, so several KEKs can be loaded
while a rotation re-wraps rows. The associated data binds both ciphertexts to the row's
(account id, store id, secret id): a row copied over another row does not decrypt.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sluice.errors import CryptoError

NONCE_BYTES = 12


def kek_id_of(key: bytes) -> str:
    """A stable, non-secret id for a KEK: 16 hex chars of a domain-separated hash."""
    return hashlib.sha256(b"sluice-kek-id:" + key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Sealed:
    """What is stored for one secret: nothing here reveals the plaintext."""

    kek_id: str
    wrapped_key: bytes  # nonce || AESGCM(kek, data_key)
    ciphertext: bytes  # nonce || AESGCM(data_key, value)


def associated_data(account_id: str, store_id: str, secret_id: str) -> bytes:
    return f"sluice/v1|{account_id}|{store_id}|{secret_id}".encode()


@dataclass(frozen=True)
class Keyring:
    """The loaded KEKs; the first is the active one that wraps new data keys."""

    keys: tuple[bytes, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys or any(len(k) != 32 for k in self.keys):
            raise ValueError("a keyring needs at least one 32-byte key")

    @property
    def active_id(self) -> str:
        return kek_id_of(self.keys[0])

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(kek_id_of(k) for k in self.keys)

    def _kek(self, kek_id: str) -> bytes:
        for key in self.keys:
            if kek_id_of(key) == kek_id:
                return key
        raise CryptoError(f"key-encryption key {kek_id} is not loaded")

    def seal(self, plaintext: bytes, aad: bytes) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, aad)
        return Sealed(self.active_id, self._wrap(data_key, self.keys[0], aad), ciphertext)

    def open(self, sealed: Sealed, aad: bytes) -> bytes:
        data_key = self._unwrap(sealed, aad)
        try:
            return AESGCM(data_key).decrypt(sealed.ciphertext[:NONCE_BYTES], sealed.ciphertext[NONCE_BYTES:],
                                            aad)
        except InvalidTag:
            raise CryptoError("secret ciphertext does not authenticate") from None

    def rewrap(self, sealed: Sealed, aad: bytes) -> Sealed:
        """The same ciphertext with its data key wrapped by the active KEK (rotation)."""
        if sealed.kek_id == self.active_id:
            return sealed
        data_key = self._unwrap(sealed, aad)
        return Sealed(self.active_id, self._wrap(data_key, self.keys[0], aad), sealed.ciphertext)

    def _wrap(self, data_key: bytes, kek: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(kek).encrypt(nonce, data_key, b"wrap|" + aad)

    def _unwrap(self, sealed: Sealed, aad: bytes) -> bytes:
        kek = self._kek(sealed.kek_id)
        try:
            return AESGCM(kek).decrypt(sealed.wrapped_key[:NONCE_BYTES], sealed.wrapped_key[NONCE_BYTES:],
                                       b"wrap|" + aad)
        except InvalidTag:
            raise CryptoError("data key does not authenticate") from None


def preview(secret: str) -> str:
    """At most 8 characters shown and at most a quarter of the secret: ``sk-p…9xQa`` or ``****``."""
    shown = min(8, len(secret) // 4)
    if shown < 4:
        return "****"
    head = shown // 2
    tail = shown - head
    return f"{secret[:head]}…{secret[-tail:]}"
