#!/usr/bin/env python3
"""docs/openapi.yaml is a valid OpenAPI 3 document (full validation when
openapi-spec-validator is installed, structural checks otherwise)."""
import sys

import yaml

doc = yaml.safe_load(open(sys.argv[1]))
assert str(doc.get("openapi", "")).startswith("3."), "openapi: must be 3.x"
assert doc.get("info", {}).get("title"), "info.title missing"
paths = doc.get("paths") or {}
assert paths, "no paths"
methods = {"get", "put", "post", "patch", "delete"}
for path, item in paths.items():
    assert path.startswith("/"), path
    ops = [m for m in item if m in methods]
    assert ops, f"{path}: no operations"
    for m in ops:
        assert item[m].get("responses"), f"{m.upper()} {path}: no responses"
try:
    from openapi_spec_validator import validate
except ImportError:
    print("openapi-spec-validator not installed: structural checks only")
else:
    validate(doc)
    print("openapi-spec-validator: valid")
print(f"{len(paths)} paths OK")
