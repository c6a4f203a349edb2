"""Offline schema checks: Kubernetes objects, the CRDs' objects, and docker-compose.yml.

- Kubernetes built-in kinds: the strict JSON schemas `kubernetes-validate` ships (generated from
  each release's OpenAPI; strict = an unknown field is an error, as `kubectl apply --validate=strict`
  makes it), for every version in KUBERNETES_VERSIONS.
- prometheus-operator and KEDA kinds: their CRDs' openAPIV3Schema, converted by crd_schema.py and
  vendored under schemas/ (UPSTREAM.md there names the releases).
- docker-compose.yml: the compose specification's JSON schema, vendored under schemas/compose-spec/.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes_validate import utils as kubernetes_schemas
from referencing import Registry, Resource

SCHEMAS = Path(__file__).resolve().parent / "schemas"
# The release of the kubectl on the development machines (1.32.4) and the newest kubernetes-validate
# ships: every manifest must be valid on both, so one written against only the newer API fails here.
KUBERNETES_VERSIONS = ("1.32", "1.37")


@cache
def crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    """``{(apiVersion, kind): validator}`` for every vendored CRD schema."""
    found = {}
    for path in sorted(SCHEMAS.glob("*/*.json")):
        if path.parent.name == "compose-spec":
            continue
        schema = json.loads(path.read_text(encoding="utf-8"))
        key = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        found[key] = jsonschema.Draft7Validator(schema)
    return found


@cache
def _kubernetes_validator(version: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator:
    # kubernetes_validate.utils.validate, but built once per kind: its definitions file is 3 MB.
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    directory = f"kubernetes-json-schema/v{version}.0-local-strict"
    schema = kubernetes_schemas.schema_contents(f"{directory}/{kind.lower()}-{group}.json", version)
    registry: Registry = Resource.from_contents(schema) @ Registry()
    registry = _definitions(directory, version) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


@cache
def _definitions(directory: str, version: str) -> Resource[Any]:
    return Resource.from_contents(kubernetes_schemas.schema_contents(f"{directory}/_definitions.json", version))


def object_errors(doc: dict[str, Any], version: str) -> list[str]:
    """What is wrong with one Kubernetes object, one line each; empty when valid."""
    key = (doc["apiVersion"], doc["kind"])
    if key in crd_validators():
        validator: jsonschema.protocols.Validator = crd_validators()[key]
    else:
        try:
            validator = _kubernetes_validator(version, *key)
        except FileNotFoundError:
            return [f"{key[1]} {key[0]}: no schema for it in Kubernetes {version} nor among the vendored CRDs"]
    name = doc.get("metadata", {}).get("name", "?")
    return [f"{key[1]}/{name} at {'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in validator.iter_errors(doc)]


@cache
def compose_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "compose-spec" / "compose-spec.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def compose_errors(compose: dict[str, Any]) -> list[str]:
    """What is wrong with a parsed compose file against the compose specification, one line each."""
    return [f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
            for error in compose_validator().iter_errors(compose)]
