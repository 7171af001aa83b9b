"""signgate: admit only container images that carry a valid cosign signature from a
trusted signer.
"""

__version__ = "0.1.0"
