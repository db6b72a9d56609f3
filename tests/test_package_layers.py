"""Dependencies between the packages of `idp/` point one way (STYLE §1, issue 24): each package
imports only packages of a lower layer, so no two packages import each other round a loop. Every
import counts — at module level, inside a function, under `TYPE_CHECKING` — as
`package_cycles.py` counts them: a lazy import is still a dependency (it is how circles hid).

The engine (`identity`) imports no protocol, adapter, outbox or UI package: the domains above it
register what they do when it ends credentials, erases or merges accounts, or announces an
account event (`idp.identity.hooks`)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.oidc.test_dependencies import find_cycle

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "idp"
# Bottom to top. A package may import the packages of the layers below its own, nothing else.
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(layer.split()) for layer in (
    "wechat security observability ui",  # upstream clients and plumbing: know no domain
    "identity",                          # the engine: accounts, identities, sessions, merges
    "staff",                             # admin roles, proposals, the sealed audit chain
    "sms",                               # the SMS sender (its CLI normalises phones)
    "second_factor",                     # TOTP, passkeys, recovery codes, the mfa_token
    "accounts",                          # password and SMS sign-in, registration
    "oidc",                              # the protocol: tokens, consents, the server
    "events",                            # the outbox: account events and back-channel logout
    "usage",                             # counters and rollups over the domains
    "wechat_login",                      # WeChat sign-in: grants plugged into the server
    "account_centre",                    # the user's account pages
    "maintenance",                       # the worker: delivery, retention, reconciliation
    "admin api operations",              # the admin UI, the management API, running the IdP
))
NOT_LAYERED = frozenset({"migrations", "demo"})  # Alembic scripts; the demo seeds everything


def layer_of(package: str) -> int:
    return next(index for index, layer in enumerate(LAYERS) if package in layer)


def packages() -> list[str]:
    return sorted(path.name for path in PACKAGE_ROOT.iterdir()
                  if (path / "__init__.py").is_file() and path.name not in NOT_LAYERED)


def imported_packages(path: Path) -> set[str]:
    """The `idp` packages `path` imports, by any import statement anywhere in it."""
    module = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = list(module[: len(module) - node.level + (path.name == "__init__.py")])
                base = ".".join([*anchor, *([base] if base else [])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            parts = name.split(".")
            if len(parts) > 1 and parts[0] == "idp" and (PACKAGE_ROOT / parts[1]).is_dir():
                found.add(parts[1])
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {package: set() for package in packages()}
    for package in graph:
        for path in (PACKAGE_ROOT / package).rglob("*.py"):
            if "fake" in path.parts:
                continue  # the shipped fakes stand in for the outside world
            graph[package] |= imported_packages(path) - {package} - NOT_LAYERED
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{package} -> {imported}"
        for package, imports in graph.items()
        for imported in imports
        if layer_of(imported) >= layer_of(package)
    )


def test_every_package_has_a_layer() -> None:
    layered = set().union(*LAYERS)
    assert set(packages()) - layered == set()
    assert {"identity", "oidc", "admin"} <= set(packages())  # the scan saw the packages


def test_no_package_imports_a_package_above_it_or_beside_it() -> None:
    assert upward_imports(package_graph()) == []


def test_packages_import_each_other_in_no_circle() -> None:
    assert find_cycle(package_graph()) is None


def test_the_engine_imports_no_protocol_adapter_outbox_or_ui() -> None:
    assert package_graph()["identity"] == set()


def test_the_checks_catch_an_upward_import_and_a_circle() -> None:
    """The checks themselves, on the shape the engine had (identity -> oidc -> identity)."""
    graph = {"identity": {"oidc"}, "oidc": {"identity"}, "admin": {"identity"}}
    assert upward_imports(graph) == ["identity -> oidc"]
    assert find_cycle(graph) is not None
