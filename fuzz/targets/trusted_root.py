"""The Sigstore trusted root (`load_trusted_root`): ``--trusted-root FILE`` and the ConfigMap.

Configuration rather than attacker input, but a bad file must be a `ConfigError` (exit status 2)
with a one-line reason, never a traceback.
"""

from __future__ import annotations

from datetime import UTC, datetime

from signgate.errors import ConfigError
from signgate.signatures.trusted_root import load_trusted_root

ACCEPTED: tuple[type[Exception], ...] = (ConfigError,)

_WHEN = datetime(2025, 1, 1, tzinfo=UTC)


def run(data: bytes) -> None:
    root = load_trusted_root(data)
    for log in (*root.tlogs, *root.ctlogs):
        log.valid_at(_WHEN)
        assert root.tlog_keys(log.log_id) or root.ctlog_key(log.log_id)
    for authority in (*root.certificate_authorities, *root.timestamp_authorities):
        authority.valid_at(_WHEN)
