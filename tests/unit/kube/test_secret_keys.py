"""Secret-held keys: a passing failure to read a Secret keeps the key read before; a Secret that
is gone or forbidden breaks the policy, as it must."""

from __future__ import annotations

from signgate.kube.api import KubeApiError
from signgate.kube.handlers import LastGoodKeys, resolve_secret_keys

PEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
REFS = [("release", "keys", "cosign-keys", "cosign.pub")]


class FlakyApi:
    def __init__(self) -> None:
        self.failure: KubeApiError | None = None

    async def read_secret(self, namespace: str, name: str) -> dict[str, bytes]:
        if self.failure is not None:
            raise self.failure
        return {"cosign.pub": PEM.encode()}


async def test_a_passing_failure_keeps_the_last_good_key_and_a_missing_secret_does_not() -> None:
    api = FlakyApi()
    last_good: LastGoodKeys = {}
    resolved, errors = await resolve_secret_keys(api, REFS, "signgate", last_good)  # type: ignore[arg-type]
    assert (resolved, errors) == ({"release": PEM}, [])

    for status in (0, 429, 500, 503):  # no answer, rate-limited, server errors
        api.failure = KubeApiError("blip", status)
        resolved, errors = await resolve_secret_keys(api, REFS, "signgate", last_good)  # type: ignore[arg-type]
        assert (resolved, errors) == ({"release": PEM}, []), status

    for status, reason in ((404, "not found"), (403, "not readable (RBAC)")):
        api.failure = KubeApiError("gone", status)
        resolved, errors = await resolve_secret_keys(api, REFS, "signgate", last_good)  # type: ignore[arg-type]
        assert resolved == {}
        assert errors == [f"authority 'release': Secret keys/cosign-keys: {reason}"]

    # Without a key read before, a passing failure is an error too (nothing to fall back on).
    api.failure = KubeApiError("blip", 500)
    resolved, errors = await resolve_secret_keys(api, REFS, "signgate", {})  # type: ignore[arg-type]
    assert resolved == {} and len(errors) == 1
