"""Finer crypto errors, all subclasses of `mfmc.errors.CryptoError` (exit code 1).

Callers that only care that "nothing was revealed" catch `CryptoError`; the subclasses let the platform and
the CLI say precisely what went wrong. Messages never contain key bytes or embedding values.
"""

from __future__ import annotations

from mfmc.errors import CryptoError

__all__ = [
    "CryptoError",
    "ForgedSignatureError",
    "KeyringError",
    "MissingKeyError",
    "RevokedError",
    "SharingRefusedError",
    "SignatureError",
    "StaleVersionError",
    "TamperedError",
    "UnsignedRulesError",
    "WrongKeyError",
    "WrongPassphraseError",
    "WrongRecipientError",
]


class WrongPassphraseError(CryptoError):
    """The passphrase does not open the sealed key file (or the file was modified); the file is unchanged."""


class TamperedError(CryptoError):
    """A ciphertext or statement failed authentication or is malformed: it was modified or forged."""


class WrongKeyError(CryptoError):
    """The data was sealed with, or to, a different key than the one offered."""


class WrongRecipientError(WrongKeyError):
    """An envelope addressed to someone else (a replay to another recipient)."""


class StaleVersionError(CryptoError):
    """An envelope older than the enrollment this client already holds (a rollback or a replay)."""


class RevokedError(CryptoError):
    """The owner revoked this friend's access; older envelopes are refused."""


class MissingKeyError(CryptoError):
    """No key (own or pinned friend key) is available for the operation."""


class SharingRefusedError(CryptoError):
    """The owner's level forbids sharing the embedding (a `nobody` user is never shared)."""


class SignatureError(CryptoError):
    """A rule file or statement signature problem; the platform must refuse the rules."""


class UnsignedRulesError(SignatureError):
    """Rules came without a signature."""


class ForgedSignatureError(SignatureError):
    """A signature that does not verify for the claimed owner, version and text."""


class KeyringError(CryptoError):
    """The local keyring directory is missing, already exists, or is damaged."""
