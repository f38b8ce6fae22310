"""Encryption at rest for stored secrets (tokens, client secrets): Fernet keys from CUE_FIELD_KEY, rotatable."""

from functools import lru_cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from project.redaction import secret_values_add

# cryptography.fernet is imported on first use: a Lambda cold start that reads no secret skips it.
if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> "MultiFernet":
    from cryptography.fernet import Fernet, MultiFernet

    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured("CUE_FIELD_KEY must be comma-separated Fernet keys (url-safe base64).") from exc


def fernet() -> "MultiFernet":
    """The current keys (cached per key list, so a settings override in tests takes effect)."""
    return _fernet_for(tuple(settings.CUE_FIELD_KEYS))


def encrypt(value: str) -> str:
    secret_values_add(value)  # what is worth encrypting is worth keeping out of the logs
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext; InvalidToken when no configured key opens it (a lost or rotated-away key)."""
    value = fernet().decrypt(token.encode()).decode()
    secret_values_add(value)
    return value


def rotate(token: str) -> str:
    """Re-encrypt a stored value under the newest key (after adding a key at the front of CUE_FIELD_KEY)."""
    return fernet().rotate(token.encode()).decode()


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; Python code sees the plaintext ("" when empty).

    Not searchable or orderable by its plaintext, by design. The admin and the API never show it.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        from cryptography.fernet import InvalidToken

        try:
            return decrypt(value)
        except InvalidToken as exc:
            raise ImproperlyConfigured(
                f"A stored {self.model.__name__}.{self.name} cannot be decrypted with CUE_FIELD_KEY: "
                "keep the old key in the list while rotating."
            ) from exc

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
