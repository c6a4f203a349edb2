"""Turn a CustomResourceDefinition's openAPIV3Schema into a strict JSON schema file.

    python -m tests.deploy.crd_schema CRD.yaml OUT_DIR    # writes OUT_DIR/<kind>-<group>-<version>.json

The API server reads `x-kubernetes-int-or-string` and `nullable`, which JSON Schema does not know,
and prunes unknown fields instead of refusing them. A checker that wants to catch a misspelt field
offline has to say both explicitly: hence `anyOf` for int-or-string, a `null` type for nullable,
and `additionalProperties: false` wherever the CRD lists properties and does not preserve unknown
fields (kubeconform's `--strict` does the same). Descriptions are dropped: they are half the bytes
and validate nothing. CEL rules (`x-kubernetes-validations`) cannot be evaluated here and are dropped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
DROPPED = {"description", "x-kubernetes-validations", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
           "x-kubernetes-map-type", "x-kubernetes-embedded-resource"}


def strict(node: Any) -> Any:
    """One openAPIV3Schema node as strict JSON Schema (recursively)."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {key: strict(value) for key, value in node.items()
                   if key not in DROPPED and key not in ("x-kubernetes-int-or-string", "nullable",
                                                        "x-kubernetes-preserve-unknown-fields")}
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out = {"anyOf": [{"type": "integer"}, {"type": "string"}], **out}
    return out


def object_schemas(crd: Schema) -> dict[str, Schema]:
    """``{file name: schema}`` for each served version of ``crd``, apiVersion and kind pinned."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    found = {}
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        schema = strict(version["schema"]["openAPIV3Schema"])
        properties = schema.setdefault("properties", {})
        properties["apiVersion"] = {"const": f"{group}/{version['name']}"}
        properties["kind"] = {"const": kind}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        found[f"{kind.lower()}-{group.split('.')[0]}-{version['name']}.json"] = schema
    return found


class Loader(yaml.SafeLoader):
    """A SafeLoader that reads a bare ``=`` as the string it is (a matcher type in the CRDs and in what
    `kubectl kustomize` prints), not as YAML 1.1's "value" tag, which PyYAML cannot construct."""


def _string(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


Loader.add_constructor("tag:yaml.org,2002:value", _string)


def load_all(text: str) -> list[Any]:
    """Every document of a multi-document YAML stream, empty ones left out."""
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]


def main(argv: list[str]) -> int:
    crd_file, out_dir = Path(argv[0]), Path(argv[1])
    for doc in load_all(crd_file.read_text(encoding="utf-8")):
        if doc.get("kind") == "CustomResourceDefinition":
            for name, schema in object_schemas(doc).items():
                (out_dir / name).write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
                print(out_dir / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
