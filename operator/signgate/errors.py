"""The one error hierarchy of signgate.

Every error that crosses a module edge is a `SigngateError`; third-party exceptions are wrapped
at the edge with ``raise ... from exc`` so the cause chain survives for logs while the message
stays short and safe to show a person (no tokens, remote bodies truncated).
"""

from __future__ import annotations

MAX_REMOTE_TEXT = 256


def truncate(text: str, limit: int = MAX_REMOTE_TEXT) -> str:
    """Shorten text that came from a remote party before it goes into a message."""
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SigngateError(Exception):
    """Base of every error signgate raises on purpose."""


class ConfigError(SigngateError):
    """Bad usage or configuration: an unreadable key, an invalid policy, a bad flag (exit 2)."""


class InvalidReferenceError(SigngateError):
    """An image reference that does not follow the distribution reference grammar."""

    def __init__(self, reference: str, reason: str) -> None:
        self.reference = reference
        self.reason = reason
        super().__init__(f"invalid image reference {truncate(reference, 300)!r}: {reason}")


class RegistryError(SigngateError):
    """The registry could not give us what we asked for (network, HTTP, auth, limits, lies)."""


class RegistryUnavailableError(RegistryError):
    """Connection refused, reset, TLS failure, or a 5xx after the retries we could afford."""


class RegistryHTTPError(RegistryError):
    """An HTTP status we cannot work with."""

    def __init__(self, url: str, status: int, detail: str = "") -> None:
        self.url = url
        self.status = status
        self.detail = detail
        extra = f": {truncate(detail)}" if detail else ""
        super().__init__(f"registry answered HTTP {status} for {url}{extra}")


class RegistryAuthError(RegistryError):
    """Authentication failed or the token endpoint misbehaved."""


class NotFoundError(RegistryError):
    """The manifest, blob or tag does not exist (HTTP 404)."""


class DigestMismatchError(RegistryError):
    """The registry returned bytes whose sha256 is not the digest we asked for."""


class ResponseTooLargeError(RegistryError):
    """A body went past its size cap."""


class DeadlineExceededError(RegistryError):
    """The operation's one deadline passed before the registry answered."""


class MalformedResponseError(RegistryError):
    """The registry answered with something that does not parse as what it claims to be."""


class SignatureError(SigngateError):
    """A signature, payload, key or bundle is malformed or does not verify."""


class KeyFormatError(SignatureError):
    """Key material that cannot be parsed or is of an unsupported type."""


class BundleFormatError(SignatureError):
    """A sigstore bundle, DSSE envelope or in-toto statement that does not parse."""


class TransparencyLogError(SignatureError):
    """A transparency-log entry, SET, inclusion proof or checkpoint that does not verify."""


class TimestampError(SignatureError):
    """An RFC 3161 timestamp that does not parse, is for other data, or no trusted TSA signed."""


class AdmissionRequestError(SigngateError):
    """A malformed AdmissionReview, or an admitted object we cannot read every image of.

    Before a review has parsed there is no uid to answer, so the server replies HTTP 400 with the
    message; after that it should deny (``allowed: false``) so the outcome never depends on the
    webhook's ``failurePolicy``.
    """


class PatchError(SigngateError):
    """A JSONPatch that does not apply to the object it was made for (a bug, never the user's)."""


class PolicyError(ConfigError):
    """A TrustPolicy that is invalid (bad pattern, bad key, unknown authority, ...)."""


class NamespaceLabelsUnknownError(SigngateError):
    """The labels of an admitted object's namespace cannot be known, and a TrustPolicy with a
    ``namespaceSelector`` might govern it: the admission is denied with this message."""
