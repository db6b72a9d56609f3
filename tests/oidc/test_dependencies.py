"""Dependencies point one way (STYLE §1): `idp.oidc` is the protocol and knows nothing of WeChat
or of the admin UI; adapters plug into it (the WeChat token-exchange grant is registered into the
server by `idp.wechat_login`). Inside `idp.oidc` the modules form no import circle."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from flask import Flask

from idp.oidc.discovery import TOKEN_EXCHANGE

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "idp"
OIDC = PACKAGE_ROOT / "oidc"
FORBIDDEN = ("idp.wechat", "idp.wechat_login", "idp.admin")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    root = PACKAGE_ROOT.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative).is_dir()


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """Imports under `if TYPE_CHECKING:` never run: they are no dependency at run time."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(inner) for inner in ast.walk(child))
    return skipped


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside a function (a lazy import is a
    dependency too: it is how the old circle was hidden)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = type_checking_nodes(tree)
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if is_module(candidate) else base)
    return found


def oidc_import_graph() -> dict[str, set[str]]:
    return {
        module_name(path): {name for name in imported_modules(path) if name.startswith("idp.oidc")}
        for path in sorted(OIDC.rglob("*.py"))
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for neighbour in sorted(graph.get(node, ())):
            if neighbour == node or neighbour not in graph:
                continue
            if state.get(neighbour) == "open":
                return [*stack[stack.index(neighbour) :], neighbour]
            if neighbour not in state:
                cycle = visit(neighbour)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_oidc_source_never_imports_wechat_or_admin() -> None:
    offenders = {
        module_name(path): sorted(
            name for name in imported_modules(path) if name.startswith(FORBIDDEN)
        )
        for path in sorted(OIDC.rglob("*.py"))
    }
    assert len(offenders) >= 10  # the scan saw the package
    assert {module: names for module, names in offenders.items() if names} == {}


def test_importing_every_oidc_module_loads_no_wechat_or_admin_code() -> None:
    """The transitive check: a fresh interpreter imports every `idp.oidc` module and lists what
    got loaded along the way."""
    modules = [module_name(path) for path in sorted(OIDC.rglob("*.py"))]
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(result.stdout)
    assert "idp.oidc.server" in loaded and "idp.oidc.views" in loaded
    assert [name for name in loaded if name.startswith(FORBIDDEN)] == []


def test_oidc_modules_form_no_import_circle() -> None:
    graph = oidc_import_graph()
    assert "idp.oidc.client_cache" in graph["idp.oidc.tokens"]
    assert find_cycle(graph) is None


def test_cycle_finder_finds_a_circle() -> None:
    """The finder itself: the shape the package had (server → tokens → server)."""
    graph = {"a.server": {"a.tokens"}, "a.tokens": {"a.server"}, "a.grants": {"a.tokens"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"a.server", "a.tokens"}
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_wechat_login_registers_the_token_exchange_grant__rfc8693_2(app: Flask) -> None:
    """The grants live with WeChat sign-in and are plugged into the server at start-up: the
    js_code exchange, and its second step with an mfa_token."""
    server = app.extensions["idp_authorization_server"]
    grant_classes = [grant for grant, _ in server._token_grants]
    exchange = [grant for grant in grant_classes if grant.GRANT_TYPE == TOKEN_EXCHANGE]
    assert [grant.__module__ for grant in exchange] == [
        "idp.wechat_login.token_exchange",
        "idp.wechat_login.mfa_exchange",
    ]
