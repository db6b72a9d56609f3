"""Side by side: the IdP (PostgreSQL + Redis, `idp serve` defaults) and the reference provider
(panva's oidc-provider, ../shared/peers), driven by wrk, alternating A B A B.

    make bench-compare                     # = .venv/bin/python bench/compare.py --write-readme
    .venv/bin/python bench/compare.py --help

One table: requests/s, p50/p99, server CPU ms per request, RSS per process, the ratio. What the
scenarios send and how the figures are taken: bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine_time  # noqa: E402 - bench/machine_time.py: where the machine time goes
import run as single  # noqa: E402 - bench/run.py: instance set-up, CPU sampling

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
README = BENCH_DIR / "README.md"
LUA = BENCH_DIR / "wrk" / "scenario.lua"
# shared/ sits beside the checkout (../shared), or beside the folder of worktrees.
PEER_SOURCES = [ROOT.parent / "shared" / "peers" / "oidc-provider",
                ROOT.parent.parent / "shared" / "peers" / "oidc-provider"]
HOST = "127.0.0.1"
PEER_JWT_PORT, PEER_USER_PORT, PEER_REDIS_PORT = 3100, 3101, 3102
FLOOR_PORT = 3190
REFRESH_FLOOR_PORT = 3191
PEER_REDIRECT = f"http://{HOST}:{PEER_USER_PORT}/cb"
PEER_AUTH = "Basic " + base64.b64encode(b"bench:bench-secret").decode()
WECHAT_APPID = "wxbench0000000001"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JS_CODE_TYPE = "urn:wechat:params:oauth:token-type:js_code"
VERIFIER = "bench-verifier-" + "v" * 40
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
SCENARIOS = (
    "client_credentials", "userinfo", "introspection", "jwks", "refresh_token",
    "authorization_code", "token_exchange",
)  # fmt: skip
# Targets of issue 25: (minimum ratio to the peer, or None) and (minimum units/s, or None);
# token exchange also at most 3 ms of server CPU per login (TOKEN_EXCHANGE_CPU_MS).
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "client_credentials": (1.0, None),
    "userinfo": (1.0, None),
    "introspection": (1.0, None),
    "jwks": (1.5, None),
    "refresh_token": (0.7, None),
    "authorization_code": (0.7, None),
    "token_exchange": (None, 300),
}
TOKEN_EXCHANGE_CPU_MS = 3.0
# The write paths are held against the peer keeping its state in Redis (ADAPTER=redis), as a
# production deployment of it does; the read paths against the in-memory peer, its best case.
REDIS_PEER_SCENARIOS = ("refresh_token", "authorization_code")
UNITS = {"authorization_code": "flows", "token_exchange": "logins"}
# Returning mini-program users: each signs in once before the measured runs; the js_codes then
# go round them, so two requests of one user are rarely in flight at once (as in real life).
MINIPROGRAM_USERS = 64


@dataclass
class WrkRun:
    """One wrk invocation: what to send (environment of bench/wrk/scenario.lua)."""

    base: str
    env: dict[str, str]
    pool: list[str] | None = None


@dataclass
class Figures:
    units: float  # requests/s, or flows/s, logins/s
    p50: float
    p99: float
    bad: int
    errors: int
    cpu_ms: float  # server CPU per unit
    store_cpu_ms: float = 0.0  # PostgreSQL's and Redis's CPU per unit (the store's own work)
    rss_mb: list[float] = field(default_factory=list)
    parts: dict[str, float] | None = None  # machine ms per unit by part (--where)


@dataclass
class Row:
    scenario: str
    idp: list[Figures] = field(default_factory=list)
    peer: list[Figures] = field(default_factory=list)
    sqlite: list[Figures] = field(default_factory=list)
    floor: list[Figures] = field(default_factory=list)  # refresh_token: its floor's runs


# --- wrk -------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (Debian package)", flush=True)
    apt = ["apt-get", "install", "-y", "-q", "wrk"]
    if os.geteuid() != 0:
        apt.insert(0, "sudo")
    if subprocess.run(apt, check=False).returncode != 0:
        subprocess.run([*apt[:-4], "update", "-q"], check=False)
        subprocess.run(apt, check=True)
    return shutil.which("wrk") or "wrk"


def run_wrk(
    wrk: str, spec: WrkRun, seconds: float, connections: int, workdir: Path
) -> dict[str, float]:
    env = {**os.environ, **spec.env}
    if spec.pool is not None:
        pool = workdir / f"pool-{secrets.token_hex(4)}.txt"
        pool.write_text("\n".join(spec.pool) + "\n")
        env["POOL_FILE"] = str(pool)
    completed = subprocess.run(
        [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(LUA),
         spec.base],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    match = re.search(r"^RESULT (.*)$", completed.stdout, re.M)
    if not match:
        raise SystemExit(f"wrk failed: {completed.stdout}\n{completed.stderr}")
    return {key: float(value) for key, value in re.findall(r"(\w+)=([\d.]+)", match.group(1))}


# --- processes -------------------------------------------------------------------------------


def tree(pid: int) -> list[int]:
    """The process and its descendants (granian's master and workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    return sum(single.process_cpu(p) for p in tree(pid))


STORE_PROCESSES = ("postgres", "redis-server")


def store_cpu_seconds() -> dict[int, float]:
    """CPU of every PostgreSQL and Redis process on the machine, by pid: the stores' own work."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name in STORE_PROCESSES:
                found[int(entry.name)] = single.process_cpu(int(entry.name))
    return found


def store_cpu_since(before: dict[int, float]) -> float:
    """The stores' CPU since `before`: each live process's growth (one started since counts
    whole; one that ended meanwhile, such as an autovacuum worker, is not subtracted)."""
    return sum(now - before.get(pid, 0.0) for pid, now in store_cpu_seconds().items()
               if now >= before.get(pid, 0.0))


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} not ready in 60 s:\n{log.read_text()[-3000:]}")


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
          ) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=cwd)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- the peer --------------------------------------------------------------------------------


def prepare_peer(workdir: Path) -> Path:
    """A copy of ../shared/peers/oidc-provider with its node modules (shared/ is read-only)."""
    target = Path(os.environ.get("IDP_BENCH_PEER_DIR", "/tmp/idp-bench-peer"))
    if not (target / "node_modules" / "oidc-provider").is_dir():
        sources = [Path(os.environ["IDP_BENCH_PEER_SOURCE"])] if os.environ.get(
            "IDP_BENCH_PEER_SOURCE") else PEER_SOURCES
        source = next((s for s in sources if (s / "server.js").is_file()), None)
        if source is None:
            raise SystemExit(f"no reference peer in {', '.join(map(str, sources))}")
        shutil.copytree(source, target, dirs_exist_ok=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=target, check=True)
    return target


@dataclass
class Peer:
    jwt: subprocess.Popen[bytes]  # RS256 JWT access tokens: client_credentials, JWKS
    user: subprocess.Popen[bytes]  # dev interactions, opaque tokens: the user scenarios
    redis: subprocess.Popen[bytes]  # the same, its state in Redis: the write paths
    browser: requests.Session = field(default_factory=requests.Session)
    redis_browser: requests.Session = field(default_factory=requests.Session)

    def for_scenario(self, scenario: str) -> subprocess.Popen[bytes]:
        if scenario in ("client_credentials", "jwks"):
            return self.jwt
        return self.redis if scenario in REDIS_PEER_SCENARIOS else self.user


def start_peer(directory: Path, workdir: Path, redis_url: str) -> Peer:
    env = {**os.environ, "HOST": HOST}
    jwt = start(["node", "server.js"], {**env, "PORT": str(PEER_JWT_PORT), "TOKEN_FORMAT": "jwt"},
                workdir / "peer-jwt.log", cwd=directory)
    user = start(["node", "server.js"], {**env, "PORT": str(PEER_USER_PORT),
                                         "DEV_INTERACTIONS": "1"},
                 workdir / "peer-user.log", cwd=directory)
    redis = start(["node", "server.js"], {**env, "PORT": str(PEER_REDIS_PORT),
                                          "DEV_INTERACTIONS": "1", "ADAPTER": "redis",
                                          "PEER_REDIS_URL": redis_url},
                  workdir / "peer-redis.log", cwd=directory)
    for port, process, log in ((PEER_JWT_PORT, jwt, "peer-jwt.log"),
                               (PEER_USER_PORT, user, "peer-user.log"),
                               (PEER_REDIS_PORT, redis, "peer-redis.log")):
        wait_ready(f"http://{HOST}:{port}/.well-known/openid-configuration", process,
                   workdir / log, "oidc-provider")
    return Peer(jwt, user, redis)


def start_floor(workdir: Path) -> subprocess.Popen[bytes]:
    """`bench/floor_app.py` under granian, 2 workers, as `idp serve` runs the IdP."""
    process = start([sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "2",
                     "--host", HOST, "--port", str(FLOOR_PORT), "--no-ws", "floor_app:app"],
                    {**os.environ, "PYTHONPATH": str(BENCH_DIR)}, workdir / "floor.log",
                    cwd=BENCH_DIR)
    wait_ready(f"http://{HOST}:{FLOOR_PORT}/", process, workdir / "floor.log", "floor app")
    return process


@dataclass
class RefreshFloor:
    """`bench/refresh_floor_app.py` under granian as `idp serve` runs the IdP, rotating tokens
    of its own in the IdP's `refresh_token` table."""

    process: subprocess.Popen[bytes]
    dsn: str
    client_id: str
    client_secret: str


def start_refresh_floor(workdir: Path, db_env: dict[str, str], idp: Idp) -> RefreshFloor:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = workdir / "refresh-floor-key.pem"
    key.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    dsn = db_env["IDP_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    inst = idp.instance
    process = start(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "2",
         "--blocking-threads", "4", "--host", HOST, "--port", str(REFRESH_FLOOR_PORT),
         "--no-ws", "refresh_floor_app:app"],
        {**os.environ, "PYTHONPATH": str(BENCH_DIR), "BENCH_FLOOR_DSN": dsn,
         "BENCH_FLOOR_CLIENT": f"{inst.client_id}:{inst.client_secret}",
         "BENCH_FLOOR_KEY": str(key), "BENCH_FLOOR_ISSUER": inst.url},
        workdir / "refresh-floor.log", cwd=BENCH_DIR,
    )  # fmt: skip
    wait_ready(f"http://{HOST}:{REFRESH_FLOOR_PORT}/", process, workdir / "refresh-floor.log",
               "refresh floor")
    return RefreshFloor(process, dsn, inst.client_id, inst.client_secret)


def refresh_floor_run(floor: RefreshFloor, connections: int) -> WrkRun:
    """A fresh family per connection (the bench user's, the IdP's client), as the IdP's run."""
    import psycopg

    tokens = [secrets.token_urlsafe(36) for _ in range(connections + 8)]
    now = time.time()
    with psycopg.connect(floor.dsn, autocommit=True) as connection:
        (account,) = connection.execute(
            "SELECT account_id FROM refresh_token WHERE client_id = %s LIMIT 1",
            (floor.client_id,)).fetchone() or (None,)
        connection.cursor().executemany(
            "INSERT INTO refresh_token (token_digest, family, client_id, account_id, scope, "
            "auth_time, amr, issued_at, expires_at) VALUES (%s, %s, %s, %s, "
            "'openid profile phone offline_access', %s, '[\"pwd\"]', now(), "
            "now() + interval '30 days')",
            [(hashlib.sha256(token.encode()).hexdigest(), secrets.token_urlsafe(18),
              floor.client_id, account, int(now)) for token in tokens])
    basic = "Basic " + base64.b64encode(
        f"{floor.client_id}:{floor.client_secret}".encode()).decode()
    return WrkRun(f"http://{HOST}:{REFRESH_FLOOR_PORT}", {
        "MODE": "pool", "METHOD": "POST", "AUTH": basic, "REQ_PATH": "/token",
        "POOL_FIELD": "refresh_token", "BODY": "grant_type=refresh_token&refresh_token={}",
    }, tokens)  # fmt: skip


def peer_authorize_url(scope: str, prompt: str | None = None, nonce: str = "") -> str:
    params = {
        "client_id": "bench", "response_type": "code", "redirect_uri": PEER_REDIRECT,
        "scope": scope, "code_challenge": CHALLENGE.decode(), "code_challenge_method": "S256",
        "state": "s" + secrets.token_hex(4), "nonce": nonce or "n" + secrets.token_hex(4),
    }  # fmt: skip
    if prompt:
        params["prompt"] = prompt
    return f"/auth?{urlencode(params)}"


def peer_browser(peer: Peer, port: int) -> requests.Session:
    return peer.redis_browser if port == PEER_REDIS_PORT else peer.browser


def peer_code(peer: Peer, scope: str, prompt: str | None = None,
              port: int = PEER_USER_PORT) -> str:
    """Walk oidc-provider's dev interactions (login, then consent) to a code."""
    base = f"http://{HOST}:{port}"
    browser = peer_browser(peer, port)
    location = peer_authorize_url(scope, prompt)
    for _ in range(10):
        answer = browser.get(base + location if location.startswith("/") else location,
                                  allow_redirects=False, timeout=10)
        location = answer.headers.get("Location", "")
        if location.startswith(PEER_REDIRECT):
            return parse_qs(urlsplit(location).query)["code"][0]
        if answer.status_code == 200 and "/interaction/" in answer.url:
            form = {"prompt": "login", "login": "bench-user", "password": "x"}
            if 'name="prompt" value="consent"' in answer.text or "consent" in answer.text \
                    and "login" not in re.findall(r'name="prompt" value="(\w+)"', answer.text):
                form = {"prompt": "consent"}
            posted = browser.post(answer.url, data=form, allow_redirects=False, timeout=10)
            location = posted.headers["Location"]
        elif not location:
            raise SystemExit(f"oidc-provider: unexpected {answer.status_code}: {answer.text[:300]}")
    raise SystemExit("oidc-provider: no code after 10 steps")


def peer_tokens(peer: Peer, scope: str, prompt: str | None = None,
                port: int = PEER_USER_PORT) -> dict[str, Any]:
    code = peer_code(peer, scope, prompt, port)
    answer = requests.post(
        f"http://{HOST}:{port}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": PEER_REDIRECT,
              "code_verifier": VERIFIER},
        headers={"Authorization": PEER_AUTH}, timeout=10,
    )  # fmt: skip
    answer.raise_for_status()
    return answer.json()


def peer_cookie(peer: Peer, port: int = PEER_USER_PORT) -> str:
    """The session cookies only (`_session`, `_session.sig`; the interaction cookies of earlier
    logins are path-bound and would only lengthen the header)."""
    return "; ".join(f"{c.name}={c.value}" for c in peer_browser(peer, port).cookies
                     if c.name.startswith("_session"))


# --- the IdP ---------------------------------------------------------------------------------


@dataclass
class Idp:
    instance: single.Instance
    flow_client_id: str
    flow_client_secret: str
    miniprogram_client_id: str
    browser: requests.Session
    fake: subprocess.Popen[bytes] | None = None
    fake_url: str = ""
    codes: list[str] = field(default_factory=list)
    returning: bool = False


def prepare_idp(workdir: Path, db_env: dict[str, str], wrk_codes: int) -> Idp:
    fake_port = single.free_port()
    fake_url = f"http://{HOST}:{fake_port}"
    secret = secrets.token_urlsafe(24)
    instance = single.prepare(workdir, single.free_port(),
                              {**db_env, "IDP_WECHAT_API_BASE": fake_url})
    env = instance.env
    single.idp(env, "wechat-apps", "create", "--kind", "miniprogram", "--appid", WECHAT_APPID,
               "--secret-stdin", stdin=secret + "\n")
    miniprogram = json.loads(single.idp(
        env, "clients", "create", "--name", "bench mini-program", "--public",
        "--wechat-appid", WECHAT_APPID, "--grant-type", TOKEN_EXCHANGE,
        "--scope", "openid profile phone offline_access", "--json",
    ))  # fmt: skip
    flow = json.loads(single.idp(
        env, "clients", "create", "--name", "bench website (consent)",
        "--redirect-uri", single.REDIRECT_URI, "--grant-type", "authorization_code",
        "--scope", "openid profile phone", "--json",
    ))  # fmt: skip
    codes = [f"bench{index:06d}{secrets.token_hex(8)}" for index in range(wrk_codes)]
    (workdir / "js_codes.txt").write_text(
        "".join(f"{code} user{index % MINIPROGRAM_USERS}\n" for index, code in enumerate(codes))
    )
    fake = start(
        [sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "--workers", "1",
         "--blocking-threads", "4", "--host", HOST, "--port", str(fake_port), "--no-ws",
         "--log-level", "warning", "bench.fake_wechat:load"],
        {**os.environ, "BENCH_FAKE_APPID": WECHAT_APPID, "BENCH_FAKE_SECRET": secret,
         "BENCH_FAKE_CODES": str(workdir / "js_codes.txt"), "PYTHONPATH": str(ROOT)},
        workdir / "fake-wechat.log", cwd=ROOT,
    )  # fmt: skip
    idp = Idp(instance, flow["client_id"], flow["client_secret"], miniprogram["client_id"],
              requests.Session(), fake, fake_url, codes)
    return idp


def idp_login(idp: Idp) -> None:
    """One password login; one consent given to the (not first-party) flow client."""
    url = idp.instance.url
    page = idp.browser.get(f"{url}/login", timeout=10)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert csrf, "no CSRF token on the login page"
    answer = idp.browser.post(
        f"{url}/login",
        data={"identifier": single.PHONE, "password": single.PASSWORD, "next": "",
              "csrf_token": csrf.group(1)},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert answer.status_code == 302, answer.text[:300]
    params = idp_authorize_params(idp)
    consent = idp.browser.get(f"{url}/oauth/authorize", params=params, timeout=10)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', consent.text)
    assert csrf, consent.text[:300]
    answer = idp.browser.post(
        f"{url}/oauth/authorize",
        data={**params, "csrf_token": csrf.group(1), "decision": "allow"},
        allow_redirects=False, timeout=10,
    )  # fmt: skip
    assert answer.status_code == 302 and "code=" in answer.headers["Location"], answer.text[:300]


def idp_authorize_params(idp: Idp, nonce: str = "") -> dict[str, str]:
    return {
        "response_type": "code", "client_id": idp.flow_client_id,
        "redirect_uri": single.REDIRECT_URI, "scope": "openid profile phone",
        "state": "s" + secrets.token_hex(4), "nonce": nonce or "n" + secrets.token_hex(8),
        "code_challenge": CHALLENGE.decode(), "code_challenge_method": "S256",
    }  # fmt: skip


def idp_user_tokens(idp: Idp, count: int) -> list[dict[str, Any]]:
    return [single.code_flow(idp.instance, idp.browser) for _ in range(count)]


def token_exchange_form(idp: Idp, js_code: str) -> dict[str, str]:
    return {"grant_type": TOKEN_EXCHANGE, "client_id": idp.miniprogram_client_id,
            "subject_token": js_code, "subject_token_type": JS_CODE_TYPE,
            "scope": "openid profile phone offline_access"}  # fmt: skip


def first_logins(idp: Idp) -> None:
    """Each mini-program user signs in once (creating the account), one after the other."""
    first, idp.codes = idp.codes[:MINIPROGRAM_USERS], idp.codes[MINIPROGRAM_USERS:]
    for code in first:
        answer = requests.post(f"{idp.instance.url}/oauth/token",
                               data=token_exchange_form(idp, code), timeout=30)
        assert answer.status_code == 200, answer.text[:300]
    idp.returning = True


def idp_cookie(idp: Idp) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in idp.browser.cookies)


# --- scenarios -------------------------------------------------------------------------------


def form(values: dict[str, str]) -> str:
    return urlencode(values, safe="{}")


def idp_run(scenario: str, idp: Idp, connections: int, batch: int) -> WrkRun:
    inst = idp.instance
    basic = "Basic " + base64.b64encode(f"{inst.client_id}:{inst.client_secret}".encode()).decode()
    fixed = {"MODE": "fixed", "METHOD": "POST", "AUTH": basic}
    if scenario == "client_credentials":
        return WrkRun(inst.url, {**fixed, "REQ_PATH": "/oauth/token",
                                 "BODY": "grant_type=client_credentials"})
    if scenario in ("userinfo", "introspection"):
        token = idp_user_tokens(idp, 1)[0]["access_token"]
        if scenario == "userinfo":
            return WrkRun(inst.url, {"MODE": "fixed", "METHOD": "GET",
                                     "REQ_PATH": "/oauth/userinfo", "AUTH": f"Bearer {token}"})
        return WrkRun(inst.url, {**fixed, "REQ_PATH": "/oauth/introspect",
                                 "BODY": form({"token": token})})
    if scenario == "jwks":
        return WrkRun(inst.url, {"MODE": "fixed", "METHOD": "GET", "REQ_PATH": "/oauth/jwks"})
    if scenario == "refresh_token":
        pool = [t["refresh_token"] for t in idp_user_tokens(idp, connections + 8)]
        return WrkRun(inst.url, {"MODE": "pool", "METHOD": "POST", "AUTH": basic,
                                 "REQ_PATH": "/oauth/token", "POOL_FIELD": "refresh_token",
                                 "BODY": "grant_type=refresh_token&refresh_token={}"}, pool)
    if scenario == "authorization_code":
        flow_basic = "Basic " + base64.b64encode(
            f"{idp.flow_client_id}:{idp.flow_client_secret}".encode()).decode()
        params = idp_authorize_params(idp, nonce="NONCE")
        path = "/oauth/authorize?" + urlencode(params).replace("NONCE", "{n}")
        return WrkRun(inst.url, {
            "MODE": "flow", "AUTH": flow_basic, "COOKIE": idp_cookie(idp),
            "AUTHORIZE_PATH": path, "REQ_PATH": "/oauth/token",
            "BODY": form({"grant_type": "authorization_code", "code": "{}",
                          "redirect_uri": single.REDIRECT_URI, "code_verifier": VERIFIER}),
        })  # fmt: skip
    if scenario == "token_exchange":
        if not idp.returning:
            first_logins(idp)
        pool, idp.codes = idp.codes[:batch], idp.codes[batch:]
        return WrkRun(inst.url, {
            "MODE": "pool", "METHOD": "POST", "REQ_PATH": "/oauth/token",
            "BODY": form(token_exchange_form(idp, "{}")),
        }, pool)  # fmt: skip
    raise SystemExit(f"unknown scenario {scenario!r}")


def peer_run(scenario: str, peer: Peer, connections: int) -> WrkRun | None:
    jwt_base, user_base = f"http://{HOST}:{PEER_JWT_PORT}", f"http://{HOST}:{PEER_USER_PORT}"
    fixed = {"MODE": "fixed", "METHOD": "POST", "AUTH": PEER_AUTH}
    if scenario == "client_credentials":
        return WrkRun(jwt_base, {**fixed, "REQ_PATH": "/token",
                                 "BODY": "grant_type=client_credentials&scope=api:read"})
    if scenario == "jwks":
        return WrkRun(jwt_base, {"MODE": "fixed", "METHOD": "GET", "REQ_PATH": "/jwks"})
    if scenario in ("userinfo", "introspection"):
        token = peer_tokens(peer, "openid")["access_token"]
        if scenario == "userinfo":
            return WrkRun(user_base, {"MODE": "fixed", "METHOD": "GET", "REQ_PATH": "/me",
                                      "AUTH": f"Bearer {token}"})
        return WrkRun(user_base, {**fixed, "REQ_PATH": "/token/introspection",
                                  "BODY": form({"token": token})})
    redis_base = f"http://{HOST}:{PEER_REDIS_PORT}"
    if scenario == "refresh_token":
        pool = [peer_tokens(peer, "openid offline_access", "consent",
                            PEER_REDIS_PORT)["refresh_token"]
                for _ in range(connections + 8)]
        return WrkRun(redis_base, {"MODE": "pool", "METHOD": "POST", "AUTH": PEER_AUTH,
                                  "REQ_PATH": "/token", "POOL_FIELD": "refresh_token",
                                  "BODY": "grant_type=refresh_token&refresh_token={}"}, pool)
    if scenario == "authorization_code":
        # signed in, consent to `openid` remembered
        peer_tokens(peer, "openid", port=PEER_REDIS_PORT)
        path = peer_authorize_url("openid", nonce="NONCE").replace("NONCE", "{n}")
        return WrkRun(redis_base, {
            "MODE": "flow", "AUTH": PEER_AUTH, "COOKIE": peer_cookie(peer, PEER_REDIS_PORT),
            "AUTHORIZE_PATH": path, "REQ_PATH": "/token",
            "BODY": form({"grant_type": "authorization_code", "code": "{}",
                          "redirect_uri": PEER_REDIRECT, "code_verifier": VERIFIER}),
        })  # fmt: skip
    return None  # the mini-program token exchange has no counterpart in the peer


# --- measuring -------------------------------------------------------------------------------


def measure(
    wrk: str, make_run: Any, server_pid: int, args: argparse.Namespace, workdir: Path,
    where: bool = False,
) -> Figures | None:
    """One measured wrk run after its warm-up; with `where`, sampled by `perf` too."""
    warm = make_run()
    if warm is None:
        return None
    run_wrk(wrk, warm, args.warmup, args.connections, workdir)
    spec = make_run()
    recording = (machine_time.Recording(workdir / f"perf-{secrets.token_hex(4)}.data",
                                        max(1.0, args.duration - 1.0)) if where else None)
    before, store_before = cpu_seconds(server_pid), store_cpu_seconds()
    result = run_wrk(wrk, spec, args.duration, args.connections, workdir)
    cpu = cpu_seconds(server_pid) - before
    store_cpu = store_cpu_since(store_before)
    units = result["units"] * args.duration
    parts = recording.parts(tree(server_pid), result["units"]) if recording else None
    return Figures(
        units=result["units"], p50=result["p50"], p99=result["p99"],
        bad=int(result["bad"]), errors=int(result["errors"]),
        cpu_ms=cpu * 1000 / max(1.0, units),
        store_cpu_ms=store_cpu * 1000 / max(1.0, units),
        rss_mb=[rss_mb(pid) for pid in tree(server_pid)], parts=parts,
    )  # fmt: skip


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summary(runs: list[Figures]) -> dict[str, Any]:
    return {
        "units": mean([r.units for r in runs]), "p50": mean([r.p50 for r in runs]),
        "p99": mean([r.p99 for r in runs]), "cpu": mean([r.cpu_ms for r in runs]),
        "store": mean([r.store_cpu_ms for r in runs]),
        "bad": sum(r.bad + r.errors for r in runs), "rss": runs[-1].rss_mb if runs else [],
    }  # fmt: skip


def rss_text(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.0f}"
    master, workers = values[0], values[1:]
    return f"{master:.0f} + {len(workers)}×{mean(workers):.0f}"


def verdict(row: Row, idp: dict[str, Any], peer: dict[str, Any] | None) -> str:
    ratio_target, absolute_target = TARGETS[row.scenario]
    checks = []
    if ratio_target is not None and peer:
        checks.append(idp["units"] >= ratio_target * peer["units"])
        checks.append(idp["p99"] <= 1.5 * peer["p99"])
    if absolute_target is not None:
        checks.append(idp["units"] >= absolute_target)
    if row.scenario == "token_exchange":
        checks.append(idp["cpu"] <= TOKEN_EXCHANGE_CPU_MS)
    if peer and ratio_target is None:
        checks.append(idp["p99"] <= 1.5 * peer["p99"])
    checks.append(idp["bad"] == 0)
    if ratio_target is not None and not peer:
        return "no peer measured"
    return "met" if all(checks) else "**not met**"


def table(rows: list[Row]) -> str:
    lines = [
        "| scenario | IdP /s | peer /s | ratio | target | IdP p50 / p99 ms | peer p50 / p99 ms "
        "| IdP CPU ms | peer CPU ms | store CPU ms IdP / peer | IdP RSS MB | peer RSS MB "
        "| errors IdP / peer | SQLite /s "
        "(p99 ms) |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        idp = summary(row.idp)
        peer = summary(row.peer) if row.peer else None
        ratio_target, absolute_target = TARGETS[row.scenario]
        target = (f"≥ {ratio_target:g}×" if ratio_target is not None
                  else f"≥ {absolute_target:,.0f}/s")
        unit = UNITS.get(row.scenario, "")
        sqlite = summary(row.sqlite) if row.sqlite else None
        lines.append(
            f"| {row.scenario}{' (' + unit + ')' if unit else ''} | {idp['units']:,.0f} "
            f"| {peer['units']:,.0f} " if peer else
            f"| {row.scenario}{' (' + unit + ')' if unit else ''} | {idp['units']:,.0f} | – "
        )
        lines[-1] += (
            f"| {idp['units'] / peer['units']:.2f} " if peer and peer["units"] else "| – "
        ) + (
            f"| {target}: {verdict(row, idp, peer)} "
            f"| {idp['p50']:.1f} / {idp['p99']:.1f} "
            + (f"| {peer['p50']:.1f} / {peer['p99']:.1f} " if peer else "| – ")
            + f"| {idp['cpu']:.2f} " + (f"| {peer['cpu']:.2f} " if peer else "| – ")
            + f"| {idp['store']:.2f} / " + (f"{peer['store']:.2f} " if peer else "– ")
            + f"| {rss_text(idp['rss'])} " + (f"| {rss_text(peer['rss'])} " if peer else "| – ")
            + f"| {idp['bad']} / {peer['bad'] if peer else '–'} "
            + (f"| {sqlite['units']:,.0f} ({sqlite['p99']:.0f}) |" if sqlite else "| – |")
        )
        if row.floor:
            lines.append(floor_line(summary(row.floor), peer))
    return "\n".join(lines)


def floor_line(floor: dict[str, Any], peer: dict[str, Any] | None) -> str:
    """The refresh's floor (`bench/refresh_floor_app.py`) as a row beside the IdP's."""
    ratio = f"{floor['units'] / peer['units']:.2f}" if peer and peer["units"] else "–"
    return (
        f"| refresh_token floor: raw WSGI, 1 statement, 2 signatures | {floor['units']:,.0f} "
        + (f"| {peer['units']:,.0f} " if peer else "| – ") + f"| {ratio} | – "
        + f"| {floor['p50']:.1f} / {floor['p99']:.1f} "
        + (f"| {peer['p50']:.1f} / {peer['p99']:.1f} " if peer else "| – ")
        + f"| {floor['cpu']:.2f} " + (f"| {peer['cpu']:.2f} " if peer else "| – ")
        + f"| {floor['store']:.2f} / " + (f"{peer['store']:.2f} " if peer else "– ")
        + f"| {rss_text(floor['rss'])} " + (f"| {rss_text(peer['rss'])} " if peer else "| – ")
        + f"| {floor['bad']} / {peer['bad'] if peer else '–'} | – |"
    )


def where_text(rows: list[Row]) -> str:
    """`--where`: the first round's machine time per unit by part, IdP and peer; for a ratio
    target, the machine time a unit may take at the target (the CPUs' time ÷ the target's units
    per second) beside what the IdP's floor work (crypto, kernel, the stores, wrk) takes alone."""
    lines, budgets = [], []
    cpus = os.cpu_count() or 1
    for row in rows:
        for server, runs in (("IdP", row.idp), ("peer", row.peer)):
            if runs and runs[0].parts is not None:
                lines.append((row.scenario, server, runs[0].units, runs[0].parts))
        ratio_target = TARGETS[row.scenario][0]
        if ratio_target and row.idp and row.peer and row.idp[0].parts and row.peer[0].parts:
            ours = row.idp[0].parts
            target_units = ratio_target * row.peer[0].units
            budget = cpus * 1000 / target_units
            floor = sum(ours[p] for p in ("crypto", "kernel", "postgres", "redis", "wrk"))
            code = ours["interpreter"] + ours["native"]
            budgets.append(
                f"- {row.scenario}: {ratio_target:g}× the peer is {target_units:,.0f} units/s: "
                f"{budget:.2f} ms of the {cpus} CPUs a unit. The IdP's crypto, kernel, stores "
                f"and wrk take {floor:.2f} of it, its interpreter and other native code "
                f"{code:.2f} (the rest, idle included: {budget - floor:.2f}).")
    if not lines:
        return ""
    return ("Where each unit's machine time goes (ms; `--where`, the first round; "
            "bench/machine_time.py):\n\n" + machine_time.table(lines)
            + ("\n\n" + "\n".join(budgets) if budgets else ""))


def peer_redis_url(idp_redis_url: str) -> str:
    """The Redis-backed peer's database: the IdP's server, the next database number."""
    base, _, number = idp_redis_url.rpartition("/")
    return f"{base}/{(int(number) + 1) % 16}" if number.isdigit() else idp_redis_url


def floor_text(floor: Figures | None) -> str:
    if floor is None:
        return ""
    return (f"Floor (a raw WSGI callable serving a JWKS-sized body on granian, 2 workers, same "
            f"wrk): {floor.units:,.0f} req/s, p50 / p99 {floor.p50:.1f} / {floor.p99:.1f} ms, "
            f"{floor.cpu_ms:.3f} CPU ms per request.")


def describe(args: argparse.Namespace, workers: int) -> str:
    server = args.server or "granian"
    settings = "defaults" if not args.workers else f"--workers {args.workers}"
    return (
        f"PostgreSQL + Redis; `idp serve` {settings} ({server}, {workers} workers); "
        f"oidc-provider 9.13.3 (node {node_version()}, one process each: in-memory for "
        f"client_credentials, userinfo, introspection and JWKS, `ADAPTER=redis` for "
        f"refresh_token and authorization_code); "
        f"wrk -t1 -c{args.connections}, {args.duration:g} s after {args.warmup:g} s warm-up, "
        f"A B A B (figures: mean of the {args.rounds} runs of each); "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return "?"


def write_readme(text: str) -> None:
    block = f"<!-- results:compare -->\n{text}\n<!-- /results:compare -->"
    current = README.read_text()
    pattern = re.compile(r"<!-- results:compare -->.*?<!-- /results:compare -->", re.S)
    README.write_text(pattern.sub(lambda _m: block, current) if pattern.search(current)
                      else current.rstrip() + "\n\n" + block + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get(
        "IDP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2, help="A B pairs per scenario")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS)
    parser.add_argument("--sqlite", action="store_true",
                        help="also measure the IdP on the embedded SQLite (no target)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--server", choices=["granian", "gunicorn"],
                        help="IDP_SERVER for idp serve (default: its own default, granian)")
    parser.add_argument("--workers", type=int, help="idp serve --workers (default: its own)")
    parser.add_argument("--write-readme", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--where", action="store_true",
                        help="perf-sample the first round: where each unit's time goes")
    args = parser.parse_args(argv)
    if args.where and (why := machine_time.available()) is not None:
        raise SystemExit(f"--where: {why}")
    args.postgres = True
    scenarios = args.scenario or list(SCENARIOS)

    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="idp-compare-"))
    peer: Peer | None = None
    idp: Idp | None = None
    lite: Idp | None = None
    floor: subprocess.Popen[bytes] | None = None
    floor_row: Figures | None = None
    refresh_floor: RefreshFloor | None = None
    codes_per_run = int(args.duration + args.warmup) * 3000
    wrk_codes = codes_per_run * 2 * args.rounds * (2 if args.sqlite else 1)
    try:
        if not args.no_peer:
            peer = start_peer(prepare_peer(workdir), workdir, peer_redis_url(args.redis_url))
        floor = start_floor(workdir)
        with single.database(args, workdir) as db_env:
            idp = prepare_idp(workdir / "pg", db_env, wrk_codes // (2 if args.sqlite else 1))
            if args.server:
                idp.instance.env["IDP_SERVER"] = args.server
            single.start_server(idp.instance, single_args(args), workdir / "serve.log")
            wait_ready(idp.fake_url + "/__fake__/calls", idp.fake, workdir / "fake-wechat.log",
                       "fake WeChat")
            idp_login(idp)
            if "refresh_token" in scenarios:
                refresh_floor = start_refresh_floor(workdir, db_env, idp)
            if args.sqlite:
                lite = prepare_idp(workdir / "lite", {"IDP_DATABASE_URL":
                                   f"sqlite:///{workdir / 'lite.sqlite3'}"}, wrk_codes // 2)
            workers = len(tree(idp.instance.server.pid)) - 1
            print(describe(args, workers), flush=True)
            rows = []
            floor_row = measure(wrk, lambda: WrkRun(f"http://{HOST}:{FLOOR_PORT}", {
                "MODE": "fixed", "METHOD": "GET", "REQ_PATH": "/"}), floor.pid, args, workdir)
            print(floor_text(floor_row), flush=True)
            for scenario in scenarios:
                row = Row(scenario)
                for round_number in range(args.rounds):
                    where = args.where and round_number == 0
                    row.idp.append(measure(
                        wrk, lambda s=scenario: idp_run(s, idp, args.connections,
                                                        codes_per_run // 2),
                        idp.instance.server.pid, args, workdir, where))
                    if scenario == "refresh_token" and refresh_floor is not None:
                        row.floor.append(measure(
                            wrk, lambda: refresh_floor_run(refresh_floor, args.connections),
                            refresh_floor.process.pid, args, workdir))
                    if peer is not None:
                        pid = peer.for_scenario(scenario).pid
                        figures = measure(wrk, lambda s=scenario: peer_run(s, peer,
                                                                           args.connections),
                                          pid, args, workdir, where)
                        if figures is not None:
                            row.peer.append(figures)
                rows.append(row)
                print("\n".join(table([row]).splitlines()[2:]), flush=True)
            single.stop_server(idp.instance)
            if refresh_floor is not None:  # its connections hold the database
                stop(refresh_floor.process)
            if lite is not None:
                if args.server:
                    lite.instance.env["IDP_SERVER"] = args.server
                single.start_server(lite.instance, single_args(args), workdir / "serve-lite.log")
                wait_ready(lite.fake_url + "/__fake__/calls", lite.fake,
                           workdir / "fake-wechat.log", "fake WeChat")
                idp_login(lite)
                for row in rows:
                    row.sqlite.append(measure(
                        wrk, lambda s=row.scenario: idp_run(s, lite, args.connections,
                                                            codes_per_run // 2),
                        lite.instance.server.pid, args, workdir))
                single.stop_server(lite.instance)
    finally:
        for instance in (idp, lite):
            if instance is not None:
                single.stop_server(instance.instance)
                stop(instance.fake)
        if peer is not None:
            stop(peer.jwt)
            stop(peer.user)
            stop(peer.redis)
        stop(floor)
        if refresh_floor is not None:
            stop(refresh_floor.process)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = f"{describe(args, workers)}\n\n{table(rows)}\n\n{floor_text(floor_row)}"
    if args.where:
        text += "\n\n" + where_text(rows)
    print()
    print(text)
    if args.write_readme:
        write_readme(text)
        print(f"\nwritten to {README.relative_to(ROOT)}")


def single_args(args: argparse.Namespace) -> argparse.Namespace:
    """`idp serve` with its defaults unless --workers was given."""
    return argparse.Namespace(worker_class=None, threads=None, workers=args.workers)


if __name__ == "__main__":
    main()
