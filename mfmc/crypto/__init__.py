"""End-to-end encryption of friends' embeddings, sealed private keys, and signed rule files.

Client side (the user's device):
    ring = Keyring.create(path, "alice", passphrase)      # or Keyring.open(path, passphrase)
    ring.public -> PublicKeys                             # upload: the server stores public keys only
    ring.enroll({"dlib": vec, ...}) -> EmbeddingSet       # own embedding, version bumps on re-enrollment
    ring.share_with(bob_public, level="friends") -> bytes # envelope for bob; refuses level `nobody`
    ring.revoke("bob") -> bytes                           # signed notice for bob's client on unfriend
    ring.import_envelope(blob, sender=alice_public)       # on bob's client: verify, decrypt, store
    ring.apply_revocation(notice)                         # on bob's client: drop alice's embeddings
    ring.gallery("dlib") -> (owners, (N, D) float32)      # identification at upload time
    sign_rules(text, ring.keys, version=n) -> bytes       # detached Ed25519 signature of a .mfmc file
Server side (no private key needed):
    PublicKeys.from_json(text); envelope_header(blob) -> EnvelopeHeader (owner, recipient, version, issued)
    verify_rules(text, signature, owner_public, owner=..., min_version=...) -> RuleSignature
    may_share(default_level) -> bool
Tests: contains_secret(blob, secrets) / scan_paths(paths, secrets) find leaked keys or embeddings.
"""

from mfmc.crypto.errors import (
    CryptoError,
    ForgedSignatureError,
    KeyringError,
    MissingKeyError,
    RevokedError,
    SharingRefusedError,
    SignatureError,
    StaleVersionError,
    TamperedError,
    UnsignedRulesError,
    WrongKeyError,
    WrongPassphraseError,
    WrongRecipientError,
)
from mfmc.crypto.keys import KdfParams, KeyPair, PublicKeys, verify_rotation
from mfmc.crypto.sharing import (
    EmbeddingSet,
    EnvelopeHeader,
    envelope_header,
    may_share,
    open_envelope,
    seal_embeddings,
)
from mfmc.crypto.signing import (
    Revocation,
    RuleSignature,
    canonical_rules,
    sign_revocation,
    sign_rules,
    verify_revocation,
    verify_rules,
)

__all__ = [
    "CryptoError",
    "EmbeddingSet",
    "EnvelopeHeader",
    "ForgedSignatureError",
    "KdfParams",
    "KeyPair",
    "Keyring",
    "KeyringError",
    "MissingKeyError",
    "PublicKeys",
    "Revocation",
    "RevokedError",
    "RuleSignature",
    "SharingRefusedError",
    "SignatureError",
    "StaleVersionError",
    "TamperedError",
    "UnsignedRulesError",
    "WrongKeyError",
    "WrongPassphraseError",
    "WrongRecipientError",
    "canonical_rules",
    "contains_secret",
    "envelope_header",
    "find_secrets",
    "may_share",
    "open_envelope",
    "scan_paths",
    "seal_embeddings",
    "sign_revocation",
    "sign_rules",
    "verify_revocation",
    "verify_rotation",
    "verify_rules",
]


def __getattr__(name: str) -> object:
    """`Keyring` (the client's private keys) and the leak scanner load on first use: the server never imports them."""
    if name == "Keyring":
        from mfmc.crypto.keyring import Keyring

        return Keyring
    if name in ("contains_secret", "find_secrets", "scan_paths"):  # the leak scanner knows keyrings too
        from mfmc.crypto import scan

        return getattr(scan, name)
    raise AttributeError(f"module 'mfmc.crypto' has no attribute {name!r}")

