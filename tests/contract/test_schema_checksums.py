"""The JSON Schemas are the published contract: producers in any language validate against them.
A change must be deliberate, so every schema's sha256 is pinned in tests/contract/schemas.sha256."""

from __future__ import annotations

from processors.contracts.codec import SCHEMA_NAMES
from tests.contract.examples import REFRESH_COMMAND, SCHEMA_DIR, read_checksum_file, schema_checksums


def test_published_schemas_match_their_pinned_checksums() -> None:
    pinned = read_checksum_file()
    actual = schema_checksums()
    problems = []
    for name in sorted(set(pinned) | set(actual)):
        if name not in actual:
            problems.append(f"{name} is pinned but no longer published")
        elif name not in pinned:
            problems.append(f"{name} is new and not pinned")
        elif pinned[name] != actual[name]:
            problems.append(f"{name} changed (sha256 {actual[name][:12]}..., pinned {pinned[name][:12]}...)")
    assert not problems, (
        "event contract changed: "
        + "; ".join(problems)
        + f". Schemas live in {SCHEMA_DIR}. If the change is deliberate: keep it backward compatible "
        "(new optional fields only) or bump schema_version, update the golden events in "
        f"tests/contract/golden/, then run `{REFRESH_COMMAND}` and commit its output with the change."
    )


def test_every_event_schema_is_pinned() -> None:
    assert sorted(read_checksum_file()) == sorted(f"{n}.json" for n in SCHEMA_NAMES)
