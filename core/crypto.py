"""Encryption of secrets at rest (OAuth tokens, Last.fm session keys).

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) with a key derived from SONANCE_SECRET_KEY by
HKDF, so any sufficiently long passphrase works as the setting. Several comma-separated keys allow
rotation: the first encrypts, all decrypt (MultiFernet).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.errors import ConfigError

MIN_SECRET_LENGTH = 16


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"sonance", info=purpose).derive(secret.encode())


class TokenCipher:
    """Encrypts and decrypts short secrets; also signs values (for OAuth `state`)."""

    def __init__(self, secret_key: str) -> None:
        keys = [k.strip() for k in secret_key.split(",") if k.strip()]
        if not keys or any(len(k) < MIN_SECRET_LENGTH for k in keys):
            raise ConfigError(f"SONANCE_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters long.")
        self._fernet = MultiFernet([Fernet(base64.urlsafe_b64encode(_derive(k, b"tokens"))) for k in keys])
        self._signing_key = _derive(keys[0], b"signing")

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            raise ConfigError("A stored token cannot be decrypted: SONANCE_SECRET_KEY changed? "
                              "Add the old key after the new one, comma-separated.") from None

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self._signing_key, message, hashlib.sha256).digest()

    def verify(self, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(message), signature)
