"""Data files shipped with signgate (the public-good Sigstore trusted root)."""
