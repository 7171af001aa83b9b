"""Generators whose output is committed: the CRD (`crd`, ``signgate crd``) and the TrustPolicy
reference (`reference_doc`, ``python -m signgate.policy.generate.reference_doc``), both from the
pydantic model, the one source of truth. Drift tests fail when the committed files differ.

Nothing on the admission path imports this package.
"""
