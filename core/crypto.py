"""Encryption of secrets at rest (OAuth tokens, Last.fm session keys, sealed pending links).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key derived from SONANCE_SECRET_KEY by
HKDF, so any sufficiently long passphrase works as the setting. Several comma-separated keys allow
rotation: the first encrypts, all decrypt (MultiFernet).

Nothing cryptographic is written here: `cryptography` does the cipher, the MAC and the key
derivation; this module only turns the setting into keys and a stale key into a clear `ConfigError`.
Signing (the OAuth `state`) lives in `core.sources.oauth_state`, which says why it needs no library.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError

MIN_SECRET_LENGTH = 16


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sonance", info=purpose).derive(secret.encode())


class TokenCipher:
    """Encrypts and decrypts short secrets with the keys of SONANCE_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        keys = [k.strip() for k in secret_key.split(",") if k.strip()]
        if not keys or any(len(k) < MIN_SECRET_LENGTH for k in keys):
            raise ConfigError(f"SONANCE_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long.")
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(_derive(k, b"tokens"))) for k in keys])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            raise ConfigError("A stored token cannot be decrypted: SONANCE_SECRET_KEY changed? "
                              "Add the old key after the new one, comma-separated.") from None
