"""The one exception tree of mfmc.

Messages follow Cedar's style: lowercase, no final period, user input in backticks. Every error carries the
process exit code the CLI uses for it: 2 for invalid input, 1 for runtime failures.
"""

from __future__ import annotations


class MfmcError(Exception):
    """Base of every error mfmc raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, help: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.help = help

    def render(self) -> str:
        """The text shown to a user: the message, then an optional help line."""
        text = f"error: {self.message}"
        if self.help:
            text += f"\n  help: {self.help}"
        return text


class InvalidInputError(MfmcError):
    """The user gave something mfmc cannot accept (bad rules, bad image, unknown user)."""

    exit_code = 2


class RuleError(InvalidInputError):
    """One or more `.mfmc` files are invalid; carries every diagnostic found."""

    def __init__(self, diagnostics: list, message: str | None = None) -> None:
        self.diagnostics = list(diagnostics)
        first = self.diagnostics[0].message if self.diagnostics else "invalid rules"
        super().__init__(message or first)

    def render(self) -> str:
        return "\n".join(d.render() for d in self.diagnostics) or super().render()


class GraphError(InvalidInputError):
    """The social graph file is malformed."""


class UnknownUserError(InvalidInputError):
    """A name that is not a user of the graph or store."""


class InvalidImageError(InvalidInputError):
    """A file that is not a readable image, or one mfmc refuses (too large, corrupt)."""


class NoFaceError(InvalidInputError):
    """An image where a face was required but none was found."""


class ModelNotFoundError(MfmcError):
    """A model file or backend is not installed; the help line says how to get it."""


class StoreError(MfmcError):
    """The platform store failed or holds inconsistent state."""


class CryptoError(MfmcError):
    """A key, ciphertext or signature could not be used; nothing was revealed."""


class GenerationError(MfmcError):
    """A verified fake could not be produced (the caller must fail closed)."""


class PermissionDeniedError(InvalidInputError):
    """The authenticated user may not do this (another user's view, rules, tag or consent)."""


class AuthenticationError(MfmcError):
    """The server could not establish who is asking (no, expired or forged login)."""


class ServerUnavailableError(MfmcError):
    """The platform server cannot be reached or answered with something that is not the mfmc API."""


class NotFoundError(InvalidInputError):
    """A photo, face or other record the user named does not exist (exit 2, like an unknown user)."""
