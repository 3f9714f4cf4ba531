"""docs/claims.md is generated from the claims table and must be current."""

from __future__ import annotations

from gmemcheck.claims import CLAIMS, generate
from gmemcheck.model.config import configs_dir

DOC = configs_dir().parent / "docs" / "claims.md"


def test_claims_doc_is_current():
    assert DOC.read_text(encoding="utf-8") == generate(), "run: gmemcheck claims"


def test_every_claim_names_a_known_preset_and_property():
    from gmemcheck import properties
    from gmemcheck.model import builtin_presets

    for c in CLAIMS:
        assert c.preset in builtin_presets()
        assert c.prop in properties.REGISTRY
        assert c.reading
