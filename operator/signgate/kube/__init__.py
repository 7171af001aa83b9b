"""Operator mode: TrustPolicies from the cluster, indexed in memory by Kopf.

`run` starts Kopf and the webhook together; `handlers` index TrustPolicies (and the Secrets that
hold their keys) and report their status; `source` turns a TrustPolicy object into the compiled
policy the webhook uses, and reads a namespace the watch has not delivered yet; `resync` re-lists
the policies, so that one deleted while the watch was down stops being enforced; `pullsecrets`
gives each admission its registry credentials; `events`, `recent` and `recent_status` report
decisions; `snapshot` is a one-off read of a cluster for ``signgate audit`` and ``explain``; `api`
is the small Kubernetes client for all of it.
"""

from signgate.kube.source import ClusterPolicySource, PolicyEntry, policy_entry

__all__ = ["ClusterPolicySource", "PolicyEntry", "policy_entry"]
