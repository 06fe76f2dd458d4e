"""Keeps api/openapi.yaml and the router in step.

The served routes come from `agora routes` (one JSON object per line: method,
path, authenticated, roles, and optional_authentication when the route is
public but verifies a bearer token if one is sent); the described ones from
the spec, bundled to JSON
by the Redocly CLI that tools/openapi installs (so this test needs no YAML
parser). The test fails when a route is served but not described, described
but not served, or described with other path parameters, another security
requirement or other roles than the router enforces.

Security is described as: `[]` for a public route; requirements that all name
a scheme for a route that needs a token; and `[{}, {bearerAuth: []}]` (an
anonymous alternative plus a scheme) for a public route with optional
authentication, which must then describe its 401 answer too.

Environment:
  AGORA_BIN           the agora executable (default build/release/agora)
  AGORA_OPENAPI_SPEC  the spec to check (default api/openapi.yaml)
  AGORA_REDOCLY       the Redocly CLI (default tools/openapi/node_modules/.bin/redocly)
Relative paths are taken from the repository root.
"""

import json
import os
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PARAM = re.compile(r"\{([^{}/]+)\}")


def _path_from_env(name, default):
    p = Path(os.environ.get(name) or default)
    return p if p.is_absolute() else ROOT / p


class SetupError(Exception):
    pass


def load_served_routes():
    """[{method, path, authenticated, roles[, optional_authentication]}] as `agora routes` prints them."""
    agora = _path_from_env("AGORA_BIN", "build/release/agora")
    if not os.access(agora, os.X_OK):
        raise SetupError(f"{agora} is missing or not executable; build it (scripts/build) or set AGORA_BIN")
    with tempfile.TemporaryDirectory(prefix="agora-routes-") as data_dir:
        proc = subprocess.run([str(agora), "routes", "--data-dir", data_dir], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    if proc.returncode != 0:
        raise SetupError(f"`{agora} routes` exited with {proc.returncode}:\n{proc.stderr}")
    routes = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    if not routes:
        raise SetupError(f"`{agora} routes` printed no routes")
    return routes


def load_spec():
    """The spec as a dict, bundled to JSON by the Redocly CLI."""
    spec = _path_from_env("AGORA_OPENAPI_SPEC", "api/openapi.yaml")
    redocly = _path_from_env("AGORA_REDOCLY", "tools/openapi/node_modules/.bin/redocly")
    if not spec.is_file():
        raise SetupError(f"the OpenAPI spec {spec} does not exist")
    if not os.access(redocly, os.X_OK):
        raise SetupError(
            f"the Redocly CLI ({redocly}) is not installed, and this test needs it to read {spec.name}; "
            "install it with: (cd tools/openapi && npm ci --no-audit --no-fund --silent)")
    env = dict(os.environ, REDOCLY_TELEMETRY="off", NO_COLOR="1")
    with tempfile.TemporaryDirectory(prefix="agora-openapi-") as tmp:
        out = Path(tmp) / "openapi.json"
        proc = subprocess.run([str(redocly), "bundle", str(spec), "--ext", "json", "-o", str(out)], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not out.is_file():
            raise SetupError(f"`redocly bundle {spec}` failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return json.loads(out.read_text())


def resolve(spec, node):
    """Follows local `$ref`s ("#/components/...")."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise ValueError(f"cannot resolve $ref {ref!r}")
        seen.add(ref)
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def described_operations(spec):
    """{(METHOD, path): operation} for every operation in the spec."""
    ops = {}
    for path, item in (spec.get("paths") or {}).items():
        item = resolve(spec, item)
        for method in HTTP_METHODS:
            if method in item:
                ops[(method.upper(), path)] = item[method]
    return ops


def declared_path_params(spec, path, method):
    """Names of the `in: path` parameters of an operation, path-level ones included."""
    item = resolve(spec, spec["paths"][path])
    params = {}
    for p in item.get("parameters", []) + item[method.lower()].get("parameters", []):
        p = resolve(spec, p)
        params[(p["name"], p["in"])] = p  # operation-level ones override path-level ones
    return sorted(name for (name, where) in params if where == "path")


def shape(path):
    """The path with its parameter names blanked: /v1/users/{} for /v1/users/{id}."""
    return PARAM.sub("{}", path)


def route_drift(served, spec):
    """Human-readable differences between the served routes and the spec's operations."""
    problems = []
    described = described_operations(spec)
    served_keys = {(r["method"], r["path"]) for r in served}
    by_shape = {}
    for method, path in described:
        by_shape.setdefault((method, shape(path)), []).append(path)
    for method, path in sorted(served_keys - set(described)):
        near = [p for p in by_shape.get((method, shape(path)), []) if (method, p) not in served_keys]
        if near:
            problems.append(f"{method} {path} is served, but the spec names its path parameters differently: "
                            f"{method} {near[0]}")
        else:
            problems.append(f"{method} {path} is served but not described in the spec")
    for method, path in sorted(set(described) - served_keys):
        problems.append(f"{method} {path} is described in the spec but not served")
    for method, path in sorted(served_keys & set(described)):
        in_template = sorted(PARAM.findall(path))
        declared = declared_path_params(spec, path, method)
        if in_template != declared:
            problems.append(f"{method} {path}: the path template has parameters {in_template}, "
                            f"the spec declares path parameters {declared}")
    return problems


class OpenApiMatchesRouterTest(unittest.TestCase):
    _cache = None

    def setUp(self):
        cls = type(self)
        if cls._cache is None:
            try:
                cls._cache = (load_served_routes(), load_spec(), None)
            except (SetupError, OSError, ValueError, subprocess.TimeoutExpired) as e:
                cls._cache = (None, None, str(e))
        self.served, self.spec, error = cls._cache
        if error:
            self.fail(error)
        self.described = described_operations(self.spec)

    def test_is_openapi_3_1(self):
        self.assertRegex(str(self.spec.get("openapi")), r"^3\.1\.\d+$")

    def test_served_and_described_routes_match(self):
        problems = route_drift(self.served, self.spec)
        if problems:
            self.fail("the spec and the router disagree:\n  " + "\n  ".join(problems))

    def test_drift_check_is_not_vacuous(self):
        # Remove one served path from a copy of the spec: the check must notice.
        path = self.served[0]["path"]
        trimmed = json.loads(json.dumps(self.spec))
        del trimmed["paths"][path]
        self.assertTrue(any(path in p and "not described" in p for p in route_drift(self.served, trimmed)))

    def test_security_matches_route_policy(self):
        schemes = (self.spec.get("components") or {}).get("securitySchemes") or {}
        problems = []
        for r in self.served:
            op = self.described.get((r["method"], r["path"]))
            if op is None:
                continue  # reported by test_served_and_described_routes_match
            where = f"{r['method']} {r['path']}"
            if "security" not in op:
                problems.append(f"{where}: the operation has no `security` of its own")
                continue
            security = op["security"]
            if r["authenticated"]:
                if not security or any(not req for req in security):
                    problems.append(f"{where} needs a bearer token, but its security {security} lets anonymous "
                                    "clients in")
                for req in security:
                    for name in req:
                        if name not in schemes:
                            problems.append(f"{where}: security scheme {name!r} is not in components")
                if "401" not in op.get("responses", {}):
                    problems.append(f"{where} needs a bearer token but describes no 401 answer")
            elif r.get("optional_authentication"):
                # Public, but a token that is sent is verified: anonymous is one
                # alternative, a bearer scheme the other.
                if not any(not req for req in security) or not any(req for req in security):
                    problems.append(f"{where} takes an optional bearer token, so its security must list both {{}} "
                                    f"and a scheme ([{{}}, {{bearerAuth: []}}]), not {security}")
                for req in security:
                    for name in req:
                        if name not in schemes:
                            problems.append(f"{where}: security scheme {name!r} is not in components")
                if "401" not in op.get("responses", {}):
                    problems.append(f"{where} verifies a bearer token when one is sent but describes no 401 answer")
            elif security != []:
                hint = ""
                if any(not req for req in security):
                    hint = (" (the spec describes an optional bearer token; `agora routes` must then report "
                            "\"optional_authentication\": true for this route)")
                problems.append(f"{where} is public, so its security must be [], not {security}{hint}")
        if problems:
            self.fail("\n  ".join(["security in the spec disagrees with the router:"] + problems))

    def test_roles_match_route_policy(self):
        problems = []
        for r in self.served:
            op = self.described.get((r["method"], r["path"]))
            if op is None:
                continue
            where = f"{r['method']} {r['path']}"
            spec_roles = op.get("x-roles", [])
            if not isinstance(spec_roles, list):
                problems.append(f"{where}: x-roles must be a list, not {spec_roles!r}")
                continue
            if sorted(spec_roles) != sorted(r["roles"]):
                problems.append(f"{where}: the router allows roles {sorted(r['roles'])}, x-roles says "
                                f"{sorted(spec_roles)}")
            if r["roles"] and "403" not in op.get("responses", {}):
                problems.append(f"{where} is restricted to roles {r['roles']} but describes no 403 answer")
        if problems:
            self.fail("\n  ".join(["x-roles in the spec disagree with the router:"] + problems))


if __name__ == "__main__":
    unittest.main()
