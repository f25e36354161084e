#!/usr/bin/env python3
"""Local cluster runner: PostgreSQL + Kafka (deploy/infra.sh), the five services and the gateway.

    python deploy/cluster.py up [--instances order=2,coupon=2] [--no-seed] [--detach]
                                [--port-offset N] [--gateway-port P] [--topic-prefix X.]
                                [--db-suffix S] [--state-dir DIR]
                                [--pg-admin-dsn DSN] [--kafka-bootstrap HOST:PORT] [--env KEY=VALUE ...]
    python deploy/cluster.py down [--all] [--state-dir DIR]
    python deploy/cluster.py status [--state-dir DIR]
    python deploy/cluster.py start|stop NAME [--state-dir DIR]   (NAME e.g. order-0, or order for all)
    python deploy/cluster.py signal NAME KILL|STOP|CONT|TERM [--state-dir DIR]
    python deploy/cluster.py seed --gateway URL [--once]      (demo data; compose's seed one-shot)

With both --pg-admin-dsn and --kafka-bootstrap the cluster runs against those servers (e.g. a private
PostgreSQL and broker of a fault test) and deploy/infra.sh is not started. --env adds KEY=VALUE to every
process's environment (e.g. ORDER_SAGA_STEP_TIMEOUT_S=2); each service reads only its own prefix.

The topology (packages, env prefixes, ports, databases, upstreams) comes from deploy/services.toml.
State (cluster.json, pid files, logs) lives in .local/cluster/ unless --state-dir says otherwise.

Ctrl-C (or SIGTERM) during start-up stops every process started so far, so the next `up` starts
cleanly; after start-up it stops the services and the gateway and says how to
stop PostgreSQL and Kafka, which keep running for the next start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# CLUSTER_INFRA_SH: another infra script (a test makes it fail on purpose)
INFRA = Path(os.environ.get("CLUSTER_INFRA_SH") or ROOT / "deploy" / "infra.sh")
TOPOLOGY = ROOT / "deploy" / "services.toml"
DEFAULT_STATE = ROOT / ".local" / "cluster"
TOKEN_FILE = ROOT / ".local" / "admin-token"
HOST = "127.0.0.1"


def say(text: str) -> None:
    print(f"[cluster] {text}", flush=True)


# ----------------------------------------------------------------------------- the plan


@dataclass
class Proc:
    """One process of the cluster and everything needed to (re)start it."""

    name: str
    service: str
    package: str
    port: int
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def parse_instances(text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, count = part.partition("=")
        counts[name.strip()] = int(count)
        if counts[name.strip()] < 1:
            raise SystemExit(f"--instances: {part}: at least 1 instance")
    return counts


def parse_env(items: list[str]) -> dict[str, str]:
    env = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--env: {item!r} is not KEY=VALUE")
        env[key.strip()] = value
    return env


def infra_env() -> dict[str, str]:
    out = subprocess.run([str(INFRA), "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines() if line.startswith("export "))


def database_dsn(admin_dsn: str, name: str) -> str:
    return f"{admin_dsn.rpartition('/')[0]}/{name}"


def admin_token() -> str:
    if os.environ.get("ADMIN_TOKEN"):
        return os.environ["ADMIN_TOKEN"]
    if not TOKEN_FILE.exists():
        TOKEN_FILE.parent.mkdir(parents=True, exist_ok=True)
        TOKEN_FILE.write_text(secrets.token_hex(24) + "\n")  # hex: never starts with "-" (an option to argparse)
        TOKEN_FILE.chmod(0o600)
    return TOKEN_FILE.read_text().strip()


def plan(args: argparse.Namespace, infra: dict[str, str], token: str) -> list[Proc]:
    """Every process with its environment, in start order (the gateway last)."""
    topology = tomllib.loads(TOPOLOGY.read_text())["services"]
    counts = parse_instances(args.instances)
    unknown = set(counts) - set(topology)
    if unknown:
        raise SystemExit(f"--instances: unknown services {sorted(unknown)}")
    ports: dict[str, list[int]] = {}
    for name, svc in topology.items():
        n = 1 if name == "gateway" else counts.get(name, 1)
        base = args.gateway_port if name == "gateway" and args.gateway_port else svc["base_port"] + args.port_offset
        ports[name] = [base + 100 * i for i in range(n)]
    extra_env = parse_env(getattr(args, "env", None) or [])
    procs = []
    for name, svc in sorted(topology.items(), key=lambda kv: kv[0] == "gateway"):
        prefix = svc["env_prefix"]
        for i, port in enumerate(ports[name]):
            env = {
                f"{prefix}_HOST": HOST,
                f"{prefix}_PORT": str(port),
                f"{prefix}_ENVIRONMENT": "development",
                f"{prefix}_INSTANCE_ID": f"{name}-{i}",
            }
            if svc.get("database"):
                db = f"{svc['database']}_{args.db_suffix}" if args.db_suffix else svc["database"]
                env[f"{prefix}_DATABASE_URL"] = database_dsn(infra["PG_ADMIN_DSN"], db)
            if svc.get("kafka"):
                env[f"{prefix}_KAFKA_BOOTSTRAP"] = infra["KAFKA_BOOTSTRAP"]
                env[f"{prefix}_KAFKA_TOPIC_PREFIX"] = args.topic_prefix
            for key, target in svc.get("upstreams", {}).items():
                urls = [f"http://{HOST}:{p}" for p in ports[target]]
                env[f"{prefix}_{key}"] = ",".join(urls) if key.endswith("_URLS") else urls[0]
            for extra in svc.get("extra_env", []):
                env[f"{prefix}_{extra}"] = token if extra == "ADMIN_TOKEN" else os.environ.get(extra, "")
            env.update(extra_env)
            procs.append(Proc(f"{name}-{i}", name, svc["package"], port, env))
    return procs


# ------------------------------------------------------------------------- processes


class State:
    """``cluster.json``, pid files and logs under the state directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.pids = root / "pids"
        self.file = root / "cluster.json"

    def save(self, procs: list[Proc], info: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps({**info, "procs": [asdict(p) for p in procs]}, indent=2))
        self.file.chmod(0o600)

    def load(self) -> tuple[list[Proc], dict[str, Any]]:
        if not self.file.exists():
            raise SystemExit(f"no cluster state in {self.root} (is a cluster running? start it with `up`)")
        data = json.loads(self.file.read_text())
        return [Proc(**p) for p in data.pop("procs")], data

    def pid(self, name: str) -> int | None:
        path = self.pids / f"{name}.pid"
        if not path.exists():
            return None
        pid = int(path.read_text())
        return pid if alive(pid) else None

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def port_busy(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((HOST, port)) == 0


def launch(proc: Proc, state: State) -> subprocess.Popen[bytes]:
    if port_busy(proc.port):
        raise SystemExit(f"port {proc.port} for {proc.name} is in use (another cluster? see `status`)")
    state.logs.mkdir(parents=True, exist_ok=True)
    state.pids.mkdir(parents=True, exist_ok=True)
    # Ctrl-C is held back until the pid file is written: an interrupt between the fork and the
    # pid file would leave a process nobody knows to stop (it runs in its own session, so the
    # terminal's SIGINT does not reach it).
    # CLUSTER_STATE_DIR marks the process as this cluster's (tests look for leftovers by it).
    env = {**os.environ, **proc.env, "CLUSTER_STATE_DIR": str(state.root.resolve())}
    with signals_held(), state.log(proc.name).open("ab") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", proc.package],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_unblock_signals,  # noqa: PLW1509 (the runner starts no threads)
        )
        (state.pids / f"{proc.name}.pid").write_text(str(child.pid))
    return child


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Delay SIGINT/SIGTERM (delivered when the block ends)."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _unblock_signals() -> None:
    """In the child before exec: a process inherits the signal mask, and a service must get SIGTERM."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def _interrupt(_sig: int, _frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM interrupts like Ctrl-C (KeyboardInterrupt) for the duration."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def healthy(proc: Proc) -> bool:
    try:
        with urllib.request.urlopen(f"{proc.url}/health", timeout=1.0) as answer:
            return answer.status == 200
    except (OSError, urllib.error.URLError):
        return False


def wait_healthy(procs: list[Proc], state: State, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(procs)
    while waiting and time.monotonic() < deadline:
        for proc in list(waiting):
            if state.pid(proc.name) is None:
                raise RuntimeError(f"{proc.name} exited during start; log:\n{tail(state.log(proc.name))}")
            if healthy(proc):
                waiting.remove(proc)
        time.sleep(0.3)
    if waiting:
        names = ", ".join(p.name for p in waiting)
        raise RuntimeError(f"not healthy after {timeout_s:.0f}s: {names}; see {state.logs}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


STOP_GRACE_S = 10.0
"""How long a process is given to finish what it holds after SIGTERM, before SIGKILL."""


def stop_pids(pids: list[int], grace_s: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM every process at once, wait for all of them (``grace_s`` at most), SIGKILL those
    still running; returns the pids that had to be killed."""
    sent = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # a frozen (SIGSTOPped) process must run to handle SIGTERM
        except ProcessLookupError:
            continue
        sent.append(pid)
    deadline = time.monotonic() + grace_s
    running = sent
    while running and time.monotonic() < deadline:
        for pid in running:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
        running = [pid for pid in running if alive(pid)]
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return running


def stop_procs(procs: list[Proc], state: State) -> None:
    """The gateway first (no new requests), then every service at once, each given
    :data:`STOP_GRACE_S` to finish what it holds."""
    gateway = [p for p in procs if p.service == "gateway"]
    for tier in (gateway, [p for p in procs if p.service != "gateway"]):
        pids = {}
        for proc in reversed(tier):
            pid = state.pid(proc.name)
            if pid is not None:
                say(f"stopping {proc.name} (pid {pid})")
                pids[pid] = proc.name
        for pid in stop_pids(list(pids)):
            say(f"{pids[pid]} (pid {pid}) did not stop within {STOP_GRACE_S:.0f} s of SIGTERM: killed")
        for proc in tier:
            (state.pids / f"{proc.name}.pid").unlink(missing_ok=True)


# ------------------------------------------------------------------------------- seed


def api(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={
            "Content-Type": "application/json",
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


DEMO_PRODUCTS = [
    ("Demo Keyboard", 89000, 100),
    ("Demo Mouse", 39000, 200),
    ("Demo Monitor", 329000, 20),
    ("Demo Headset", 129000, 50),
    ("Demo Webcam", 59000, 0),
]


def demo_seeded(gateway: str) -> bool:
    """Every demo product exists (the seed makes them after the users)."""
    status, listing = api(gateway, "GET", "/api/v1/products?status=ALL&limit=100")
    names = {p["name"] for p in (listing or {}).get("items", [])} if status == 200 else set()
    return status == 200 and all(name in names for name, _, _ in DEMO_PRODUCTS)


def wait_ready(gateway: str, timeout_s: float) -> None:
    """Until the gateway reports every service ready (its /health/ready)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{gateway}/health/ready", timeout=2.0) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{gateway}/health/ready did not answer 200 within {timeout_s:.0f}s")
        time.sleep(1.0)


def seed(gateway: str, token: str, state: State) -> dict[str, Any]:
    """Demo users with balance, products with stock, an issuable coupon (skipped when present)."""
    admin = {"X-Admin-Token": token}
    state.root.mkdir(parents=True, exist_ok=True)
    marker = state.root / "seed.json"
    done = json.loads(marker.read_text()) if marker.exists() else {}
    users = done.get("users", [])
    if not users or api(gateway, "GET", f"/api/v1/users/{users[0]}")[0] != 200:
        users = []
        for name in ("Alice", "Bob", "Carol"):
            status, user = api(gateway, "POST", "/api/v1/users", {"name": name})
            if status != 201:
                raise RuntimeError(f"seed: creating user {name}: {status} {user}")
            users.append(user["user_id"])
            api(
                gateway,
                "POST",
                f"/api/v1/users/{user['user_id']}/balance/charge",
                {"amount": 1_000_000},
                {"Idempotency-Key": f"seed-{uuid.uuid4()}"},
            )
    status, listing = api(gateway, "GET", "/api/v1/products?status=ALL&limit=100")
    names = {p["name"]: p["product_id"] for p in (listing or {}).get("items", [])} if status == 200 else {}
    products = []
    for name, price, stock in DEMO_PRODUCTS:
        if name not in names:
            status, product = api(
                gateway, "POST", "/api/v1/admin/products", {"name": name, "price": price, "stock": stock}, admin
            )
            if status != 201:
                raise RuntimeError(f"seed: creating product {name}: {status} {product}")
            names[name] = product["product_id"]
        products.append(names[name])
    coupon = done.get("coupon")
    if coupon is None or api(gateway, "GET", f"/api/v1/coupons/{coupon}")[0] != 200:
        status, body = api(
            gateway,
            "POST",
            "/api/v1/admin/coupons",
            {
                "name": "Welcome 10%",
                "discount_type": "RATE",
                "discount_value": 10,
                "total_quantity": 100,
                "valid_days": 30,
            },
            admin,
        )
        if status != 201:
            raise RuntimeError(f"seed: creating coupon: {status} {body}")
        coupon = body["coupon_id"]
    done = {"users": users, "products": products, "coupon": coupon}
    marker.write_text(json.dumps(done))
    return done


# --------------------------------------------------------------------------- commands


def summarize(name: str, line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return f"{name:<10} {line.rstrip()}"
    ts = str(entry.get("ts", ""))[11:19]
    if entry.get("logger") == "access":
        what = f"{entry.get('method')} {entry.get('path')} {entry.get('status')} {entry.get('duration_ms')}ms"
    else:
        what = f"{entry.get('level', '')} {entry.get('message', '')}"
        if entry.get("error"):
            what += f" ({entry['error']})"
    rid = entry.get("request_id")
    return f"{ts} {name:<10} {what}" + (f" rid={rid}" if rid else "")


def follow(procs: list[Proc], state: State, children: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stream one line per log event until a signal comes; report processes that exit."""
    stop = {"flag": False}

    def on_signal(_sig: int, _frame: Any) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    files = {p.name: state.log(p.name).open("r", errors="replace") for p in procs}
    for handle in files.values():
        handle.seek(0, os.SEEK_END)
    reported: set[str] = set()
    while not stop["flag"]:
        quiet = True
        for name, handle in files.items():
            for line in handle.readlines():
                quiet = False
                print(summarize(name, line), flush=True)
        for name, child in children.items():
            if child.poll() is not None and name not in reported:
                reported.add(name)
                say(f"{name} exited with code {child.returncode}")
        if quiet:
            time.sleep(0.2)
    say("stopping ...")
    with signals_held():
        stop_procs(procs, state)
    for handle in files.values():
        handle.close()


def start_infra(args: argparse.Namespace) -> tuple[dict[str, str], bool]:
    """PostgreSQL and Kafka: the given ones, or deploy/infra.sh's (``True``: started by it).

    A failure of infra.sh ends in a message (its own output above says why), not a traceback.
    """
    if args.pg_admin_dsn and args.kafka_bootstrap:
        say(f"infrastructure: PostgreSQL {args.pg_admin_dsn}, Kafka {args.kafka_bootstrap} (given)")
        return {"PG_ADMIN_DSN": args.pg_admin_dsn, "KAFKA_BOOTSTRAP": args.kafka_bootstrap}, False
    say("infrastructure: deploy/infra.sh up")
    try:
        subprocess.run([str(INFRA), "up"], check=True)
        infra = infra_env()
    except subprocess.CalledProcessError as exc:
        raise SystemExit(
            f"[cluster] deploy/infra.sh {exc.cmd[-1]} failed (exit {exc.returncode}); its messages above say why "
            f"(logs: .local/pg/postgres.log, .local/kafka/kafka.log). Fix that and run again."
        ) from None
    except OSError as exc:
        raise SystemExit(f"[cluster] cannot run deploy/infra.sh: {exc}") from None
    infra.update(
        {k: v for k, v in (("PG_ADMIN_DSN", args.pg_admin_dsn), ("KAFKA_BOOTSTRAP", args.kafka_bootstrap)) if v}
    )
    return infra, True


def infra_hint() -> None:
    say("PostgreSQL and Kafka (deploy/infra.sh) keep running for the next start; stop them with: deploy/infra.sh down")


def abort_start(procs: list[Proc], state: State, children: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop whatever was started (pid files and children both, so nothing is left, and the next
    `up` sees no live process of this cluster). cluster.json stays (test harnesses read it to
    drop their databases). Further Ctrl-Cs are ignored: the runner must finish this."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with signals_held():
        stop_procs(procs, state)
        stop_pids([child.pid for child in children.values() if child.poll() is None])
        for proc in procs:
            (state.pids / f"{proc.name}.pid").unlink(missing_ok=True)


def cmd_up(args: argparse.Namespace) -> int:
    state = State(Path(args.state_dir))
    if state.file.exists() and any(state.pid(p.name) for p in state.load()[0]):
        raise SystemExit(f"a cluster already runs from {state.root}; `down` it first (or `status`)")
    procs: list[Proc] = []
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        with interruptible():
            infra, own_infra = start_infra(args)
            if args.db_suffix:
                create_databases(infra["PG_ADMIN_DSN"], args.db_suffix)
            token = admin_token()
            procs = plan(args, infra, token)
            gateway = next(p for p in procs if p.service == "gateway")
            info = {
                "gateway_url": gateway.url,
                "admin_token": token,
                "topic_prefix": args.topic_prefix,
                "db_suffix": args.db_suffix,
                "kafka_bootstrap": infra["KAFKA_BOOTSTRAP"],
                "pg_admin_dsn": infra["PG_ADMIN_DSN"],
            }
            state.save(procs, info)
            try:
                for proc in procs:
                    if proc.service == "gateway":
                        wait_healthy([p for p in procs if p.service != "gateway"], state, args.wait)
                    say(f"starting {proc.name} on {proc.url}")
                    children[proc.name] = launch(proc, state)
                wait_healthy(procs, state, args.wait)
                if not args.no_seed:
                    say(f"seeded demo data: {seed(gateway.url, token, state)}")
            except (RuntimeError, SystemExit, OSError) as exc:
                say(f"start failed: {exc}")
                abort_start(procs, state, children)
                return 1
    except KeyboardInterrupt:
        say("interrupted during start-up: stopping what was started")
        abort_start(procs, state, children)
        say(
            "stopped; nothing of this cluster runs"
            + (
                ""
                if args.pg_admin_dsn and args.kafka_bootstrap
                else " (PostgreSQL and Kafka may: deploy/infra.sh status)"
            )
        )
        return 130
    try:
        with interruptible():
            say(f"gateway:     {gateway.url}  (docs: {gateway.url}/api/docs)")
            say(f"admin token: {token}")
            say(f"logs:        {state.logs}")
            if args.detach:
                say(
                    f"detached; stop with: {sys.executable} deploy/cluster.py down"
                    + (f" --state-dir {args.state_dir}" if Path(args.state_dir) != DEFAULT_STATE else "")
                    + (" (add --all to stop PostgreSQL and Kafka too)" if own_infra else "")
                )
                return 0
            say("running; Ctrl-C stops the services and the gateway")
            follow(procs, state, children)  # handles Ctrl-C/SIGTERM itself from here on
    except KeyboardInterrupt:
        say("stopping ...")
        abort_start(procs, state, children)
    if own_infra:
        infra_hint()
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Demo data through a running gateway (compose's seed one-shot uses it too)."""
    token = args.token or os.environ.get("ADMIN_TOKEN", "")
    if not token:
        raise SystemExit("seed: the admin token is needed (--token or ADMIN_TOKEN)")
    gateway = args.gateway.rstrip("/")
    wait_ready(gateway, args.wait)
    if args.once and demo_seeded(gateway):
        say("demo data already present; nothing to do")
        return 0
    say(f"seeded demo data: {seed(gateway, token, State(Path(args.state_dir)))}")
    return 0


def create_databases(admin_dsn: str, suffix: str) -> None:
    import asyncio

    import asyncpg

    topology = tomllib.loads(TOPOLOGY.read_text())["services"]
    names = [f"{s['database']}_{suffix}" for s in topology.values() if s.get("database")]

    async def run() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            for name in names:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    say(f"databases: {', '.join(names)}")


def selected(procs: list[Proc], name: str) -> list[Proc]:
    chosen = [p for p in procs if name in (p.name, p.service)]
    if not chosen:
        raise SystemExit(f"no process {name!r}; known: {', '.join(p.name for p in procs)}")
    return chosen


def cmd_down(args: argparse.Namespace) -> int:
    state = State(Path(args.state_dir))
    if state.file.exists():
        stop_procs(state.load()[0], state)
    else:
        say(f"no cluster state in {state.root}")
    if args.all:
        subprocess.run([str(INFRA), "down"], check=False)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = State(Path(args.state_dir))
    procs, info = state.load()
    ok = True
    for proc in procs:
        pid = state.pid(proc.name)
        health = "healthy" if pid and healthy(proc) else ("running" if pid else "stopped")
        ok = ok and health == "healthy"
        print(f"{proc.name:<12} pid={pid or '-':<8} {proc.url:<28} {health}")
    print(f"gateway {info['gateway_url']}")
    return 0 if ok else 3


def cmd_start(args: argparse.Namespace) -> int:
    state = State(Path(args.state_dir))
    procs, _ = state.load()
    chosen = [p for p in selected(procs, args.name) if state.pid(p.name) is None]
    for proc in chosen:
        say(f"starting {proc.name} on {proc.url}")
        launch(proc, state)
    wait_healthy(chosen, state, args.wait)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    state = State(Path(args.state_dir))
    procs, _ = state.load()
    stop_procs(selected(procs, args.name), state)
    return 0


SIGNALS = {"KILL": signal.SIGKILL, "STOP": signal.SIGSTOP, "CONT": signal.SIGCONT, "TERM": signal.SIGTERM}


def cmd_signal(args: argparse.Namespace) -> int:
    """Send a signal to the named process(es) at once (KILL: a crash; STOP/CONT: a freeze)."""
    state = State(Path(args.state_dir))
    procs, _ = state.load()
    for proc in selected(procs, args.name):
        pid = state.pid(proc.name)
        if pid is None:
            say(f"{proc.name} is not running")
            continue
        say(f"SIG{args.signal} -> {proc.name} (pid {pid})")
        os.kill(pid, SIGNALS[args.signal])
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/cluster.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", default=str(DEFAULT_STATE), help="pid files, logs, cluster.json")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start infrastructure, services and gateway")
    up.add_argument("--instances", default="", help="e.g. order=2,coupon=2 (ports base_port + 100*i)")
    up.add_argument("--no-seed", action="store_true", help="do not create demo data")
    up.add_argument("--detach", action="store_true", help="leave it running in the background")
    up.add_argument("--port-offset", type=int, default=0, help="added to every base port")
    up.add_argument("--gateway-port", type=int, default=0, help="the gateway's port (overrides the offset)")
    up.add_argument("--topic-prefix", default="", help="every service's <P>_KAFKA_TOPIC_PREFIX")
    up.add_argument("--db-suffix", default="", help="use (and create) databases <name>_<suffix>")
    up.add_argument("--wait", type=float, default=60.0, help="seconds to wait for every /health")
    up.add_argument("--pg-admin-dsn", default="", help="PostgreSQL admin DSN instead of deploy/infra.sh's")
    up.add_argument("--kafka-bootstrap", default="", help="Kafka bootstrap instead of deploy/infra.sh's")
    up.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for every process (repeatable)",
    )
    down = commands.add_parser("down", help="stop a detached cluster")
    down.add_argument("--all", action="store_true", help="also stop PostgreSQL and Kafka")
    commands.add_parser("status", help="what runs and whether it is healthy")
    for name, text in (("start", "start a stopped process again"), ("stop", "stop one process")):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("name", help="process (order-0) or service (order)")
        sub.add_argument("--wait", type=float, default=60.0)
    seed_cmd = commands.add_parser("seed", help="create the demo data through a running gateway")
    seed_cmd.add_argument("--gateway", required=True, help="the gateway's base URL")
    seed_cmd.add_argument("--token", default="", help="admin token (default: $ADMIN_TOKEN)")
    seed_cmd.add_argument("--once", action="store_true", help="do nothing when the demo products exist")
    seed_cmd.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the gateway's readiness")
    sig = commands.add_parser("signal", help="send KILL/STOP/CONT/TERM to a process or all of a service")
    sig.add_argument("name", help="process (order-0) or service (order)")
    sig.add_argument("signal", choices=sorted(SIGNALS))
    for sub in commands.choices.values():  # --state-dir accepted after the command too
        sub.add_argument("--state-dir", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    handler = {
        "up": cmd_up,
        "down": cmd_down,
        "status": cmd_status,
        "start": cmd_start,
        "stop": cmd_stop,
        "signal": cmd_signal,
        "seed": cmd_seed,
    }
    return handler[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
