"""Operator mode: TrustPolicies from the cluster, indexed in memory by Kopf."""

from signgate.kube.source import ClusterPolicySource, PolicyEntry, policy_entry

__all__ = ["ClusterPolicySource", "PolicyEntry", "policy_entry"]
