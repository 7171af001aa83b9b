"""Reading TrustPolicies from YAML files (``signgate verify --policy``, ``serve --policy``)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from signgate.errors import PolicyError
from signgate.policy.model import TrustPolicy

MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024


def describe_validation_error(exc: ValidationError) -> str:
    """One clause per problem: ``spec.threshold: Input should be greater than or equal to 1``."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(p) for p in error["loc"] if p not in ("function-after",))
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    # A field name in a location can be any YAML key, line breaks included: keep one line.
    return " ".join("; ".join(parts).splitlines())


def parse_policies(text: str, source: str) -> list[TrustPolicy]:
    """Parse every YAML document in ``text`` as a TrustPolicy (empty documents are skipped).

    Raises:
        PolicyError: YAML that does not parse, or a document that is not a valid TrustPolicy.
    """
    try:
        documents = list(yaml.safe_load_all(text))
    # PyYAML raises ValueError for an impossible date (2024-02-30), RecursionError for nesting.
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}".replace("\n", " ")) from exc
    policies: list[TrustPolicy] = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue
        where = f"{source} (document {index})"
        if not isinstance(document, dict):
            raise PolicyError(f"{where}: expected a TrustPolicy object")
        kind = document.get("kind")
        if kind != "TrustPolicy":
            raise PolicyError(f"{where}: kind is {kind!r}, expected 'TrustPolicy'")
        try:
            policies.append(TrustPolicy.model_validate(document))
        except ValidationError as exc:
            metadata = document.get("metadata")
            name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"
            raise PolicyError(
                f"{where}: invalid TrustPolicy {name!r}: {describe_validation_error(exc)}"
            ) from exc
    names = [p.metadata.name for p in policies]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise PolicyError(f"{source}: TrustPolicy names repeated: {', '.join(repeated)}")
    return policies


def load_policy_file(path: str | Path) -> list[TrustPolicy]:
    """Read and parse a policy file.

    Raises:
        PolicyError: unreadable, too large, or invalid.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_POLICY_FILE_BYTES:
            raise PolicyError(f"{path}: {size} bytes is larger than {MAX_POLICY_FILE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text") from exc
    policies = parse_policies(text, str(path))
    if not policies:
        raise PolicyError(f"{path}: contains no TrustPolicy")
    return policies
