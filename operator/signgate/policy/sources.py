"""Policy sources for the webhook. Files here; the operator's cluster index lives in `kube`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from signgate.policy.compiled import CompiledPolicy

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


class StaticPolicySource:
    """Policies read once from ``--policy`` files; always ready.

    Without a Kubernetes API the only namespace label known is the one every namespace carries,
    ``kubernetes.io/metadata.name``, so a namespaceSelector on anything else does not select.
    """

    def __init__(self, policies: Sequence[CompiledPolicy]) -> None:
        self._policies = tuple(policies)

    def ready(self) -> bool:
        """Always: the files were read before the server started."""
        return True

    def current(self) -> Sequence[CompiledPolicy]:
        """The policies from the files."""
        return self._policies

    async def namespace_labels(self, namespace: str | None) -> Mapping[str, str] | None:
        """Only the namespace's name label (or None for cluster-scoped objects)."""
        return {NAMESPACE_NAME_LABEL: namespace} if namespace else None
