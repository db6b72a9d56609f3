"""Where one hot request's CPU goes, without a profiler: chosen functions wrapped in
`time.process_time` (inclusive, ~1 µs of wrapper each), the request called in-process as
`profile_token.py` calls it (PostgreSQL + Redis, access lines on), CPU µs per request of each.

cProfile inflates Python several times and C not at all, and a part timed alone in a loop runs
with warm caches: inside a request the same statement costs up to twice its loop figure. These
wrappers time the parts where they run.

    .venv/bin/python bench/parts.py                     # a refresh
    .venv/bin/python bench/parts.py authorization_code --requests 3000
    IDP_PARTS=parts.txt .venv/bin/python bench/parts.py   # module:attribute lines, not PARTS
    .venv/bin/python bench/parts.py authorize --hooks     # also each Flask hook of the app
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import profile_token  # noqa: E402
from run import database  # noqa: E402

# (module, attribute path): each wrapped where the callers look it up.
PARTS = (
    ("idp.oidc.hot_paths.dispatcher", "HotPathDispatcher.__call__"),
    ("idp.oidc.hot_paths.dispatcher", "HotPathDispatcher._answer"),
    ("idp.oidc.hot_paths.token_endpoint", "check_token_rate"),
    ("idp.oidc.hot_paths.token_endpoint", "HotOAuth2Request"),
    ("idp.oidc.server", "IdentityProviderServer.authenticate_client"),
    ("idp.oidc.refresh_grant", "refresh"),
    ("idp.oidc.refresh_grant", "_issue"),
    ("idp.oidc.refresh_grant", "rotate"),
    ("idp.oidc.grants", "token_holder"),
    ("idp.oidc.grants", "redeem"),
    ("idp.oidc.token_statements", "first_alone"),
    ("idp.oidc.token_statements", "write_claiming"),
    ("idp.oidc.keys", "LoadedKey.sign_jwt"),
    ("idp.oidc.grants", "IdTokenIssuer.encode_id_token"),
    ("idp.oidc.tokens", "AccessTokenGenerator.access_token_generator"),
    ("idp.crypto", "SecretBox.encrypt"),
    ("idp.oidc.hot_paths.token_endpoint", "token"),
    ("idp.usage.counters", "_count_hot_answer"),
    ("idp.oidc.client_cache", "cached_client"),
    ("flask.ctx", "AppContext.pop"),
    ("flask.ctx", "AppContext.push"),
    ("idp.usage.counters", "_count_hot_answer"),
    ("idp.oidc.hot_paths.dispatcher", "info_verbatim"),
    ("idp.observability.metrics", "observe_request"),
    ("idp.oidc.hot_paths.dispatcher", "security_headers"),
    ("idp.oidc.hot_paths.dispatcher", "HotRequest"),
)


def wrap_parts(totals: dict[str, float], calls: collections.Counter[str],
               parts: tuple[tuple[str, str], ...] = PARTS) -> None:
    for module_name, path in parts:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, name)
        setattr(owner, name, _timed(path, original, totals, calls))
        # The modules that imported the function by name see the wrapper too.
        for module in list(sys.modules.values()):
            if (not parents and getattr(module, "__name__", "").startswith("idp.")
                    and getattr(module, name, None) is original):
                setattr(module, name, getattr(owner, name))


def wrap_hooks(app: Any, totals: dict[str, float], calls: collections.Counter[str]) -> None:
    """Every before/after-request and teardown hook the app registered (the Flask pipeline's
    per-request work on a page such as the authorization endpoint), each timed as a part."""
    for registry in (app.before_request_funcs, app.after_request_funcs,
                     app.teardown_request_funcs):
        for functions in registry.values():
            for index, function in enumerate(functions):
                name = getattr(function, "__qualname__", None) or getattr(
                    getattr(function, "func", None), "__qualname__", repr(function))
                functions[index] = _timed(f"hook {name}", function, totals, calls)
    interface = app.session_interface
    for method in ("open_session", "save_session"):
        setattr(interface, method, _timed(f"session {method}", getattr(interface, method),
                                          totals, calls))


# Each part's own time (`OWN`, under "own " + its label): its time less its wrapped parts'.
_NESTED: list[float] = []
OWN = "own "


def _timed(label: str, function: Callable[..., Any], totals: dict[str, float],
           calls: collections.Counter[str]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        _NESTED.append(0.0)
        try:
            return function(*args, **kwargs)
        finally:
            spent = time.process_time() - started
            inner = _NESTED.pop()
            if _NESTED:
                _NESTED[-1] += spent
            totals[label] += spent
            totals[OWN + label] += spent - inner
            calls[label] += 1
    return timed


def table(totals: dict[str, float], calls: collections.Counter[str], count: int,
          unit: str) -> str:
    """Each part's µs per `unit` (inclusive, and its own: less its wrapped parts'), the
    largest first."""
    lines = [f"| part | µs per {unit} | own µs | calls per {unit} |", "|---|---:|---:|---:|"]
    for label, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        if not label.startswith(OWN):
            lines.append(f"| {label} | {seconds / count * 1e6:,.1f} | "
                         f"{totals[OWN + label] / count * 1e6:,.1f} | "
                         f"{calls[label] / count:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", nargs="?", default="refresh_token",
                        choices=profile_token.SCENARIOS)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--postgres-url",
                        default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--hooks", action="store_true", help="also time each Flask hook")
    args = parser.parse_args()
    args.postgres = True
    with tempfile.TemporaryDirectory(prefix="idp-parts-") as directory, database(
        args, Path(directory)
    ) as db_env, open(Path(directory) / "access.log", "w") as access_log:
        app, basic, account_id = profile_token.build(Path(directory), db_env)
        sys.stderr = access_log
        run = profile_token.scenarios(app, basic, account_id, args.requests + 200)[args.scenario]
        totals: dict[str, float] = collections.defaultdict(float)
        calls: collections.Counter[str] = collections.Counter()
        chosen = PARTS
        if os.environ.get("IDP_PARTS"):  # a file of module:attribute lines instead of PARTS
            chosen = tuple(tuple(line.split(":")) for line in
                           Path(os.environ["IDP_PARTS"]).read_text().split() if line)
        wrap_parts(totals, calls, chosen)  # type: ignore[arg-type]
        if args.hooks:
            wrap_hooks(app, totals, calls)
        for _ in range(100):
            run()
        totals.clear()
        calls.clear()
        started = time.process_time()
        for _ in range(args.requests):
            run()
        whole = (time.process_time() - started) / args.requests * 1e6
        sys.stderr = sys.__stderr__
    print(f"{args.scenario}: {whole:,.0f} µs of CPU per request (wrappers included)")
    print(table(totals, calls, args.requests, "request"))


if __name__ == "__main__":
    main()
