"""The Helm chart ships the CRD signgate generates (the rendered chart is tested with the real
helm in tests/integration/test_chart.py)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_chart_ships_the_generated_crd() -> None:
    generated = (ROOT / "deploy" / "crds" / "trustpolicies.signgate.dev.yaml").read_text()
    chart = (ROOT / "charts" / "signgate" / "crds" / "trustpolicies.signgate.dev.yaml").read_text()
    assert chart == generated, (
        "charts/signgate/crds/ drifted: cp deploy/crds/trustpolicies.signgate.dev.yaml there"
    )
