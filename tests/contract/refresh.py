"""Accept a deliberate contract change: rewrite the schema checksums and the output goldens.

    .venv/bin/python -m tests.contract.refresh

Review the diff it leaves (the goldens show what consumers will receive), and say in the commit
why the contract changed and whether schema_version had to move. Input goldens are hand-written:
edit tests/contract/golden/<input>.json yourself so it stays a realistic, complete event.
"""

from __future__ import annotations

from tests.contract.examples import (
    CHECKSUM_FILE,
    OUTPUT_RECORDS,
    encoded_output,
    golden_path,
    schema_checksums,
)


def main() -> None:
    lines = [
        "# sha256 of the published event schemas; regenerate only with: python -m tests.contract.refresh"
    ]
    lines += [f"{digest}  {name}" for name, digest in sorted(schema_checksums().items())]
    CHECKSUM_FILE.write_text("\n".join(lines) + "\n", "utf-8")
    print(f"wrote {CHECKSUM_FILE}")
    for name in OUTPUT_RECORDS:
        path = golden_path(name)
        path.write_bytes(encoded_output(name))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
