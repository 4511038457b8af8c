"""Processes the fault tests start, kill and restart: `gridpatrol serve`, a private PostgreSQL cluster, a TCP
proxy that cuts connections, and a client that retries with the same Idempotency-Key.

Run as a script (`python _procs.py prepare DATABASE_URL`) it sets up an empty database the way the test app
does (migrations, demo grids, catalog, calendar) and prints an inspector's username for it.
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
# a broken connection, before or after the answer started (a cut inside the body is a ChunkedEncodingError)
RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
             requests.exceptions.ContentDecodingError)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not become healthy in {seconds} s")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


# ----------------------------------------------------------------------------------------- app server

class Server:
    """`gridpatrol serve --workers 2` on a port, in a process group of its own so it can be killed whole."""

    def __init__(self, database_url: str, photo_storage: str, log_dir: Path, port: int | None = None, workers=2,
                 extra_env: dict | None = None):
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, DATABASE_URL=database_url, PHOTO_STORAGE=photo_storage, **(extra_env or {}))
        self.log_dir, self.workers = Path(log_dir), workers
        self.proc: subprocess.Popen | None = None
        self.starts = self.kills = 0

    def start(self, wait=True) -> "Server":
        self.starts += 1
        log = open(self.log_dir / f"server-{self.port}-{self.starts}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gridpatrol.cli", "serve", "--port", str(self.port), "--workers",
             str(self.workers)], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        log.close()
        if wait:
            wait_healthy(self.base)
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group (the master and its workers), as a crash or the OOM killer would."""
        self.kills += 1
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        for pid in _group_members(self.proc.pid):  # workers are reaped by init; wait until they are gone
            _wait_gone(pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass


def _group_members(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _wait_gone(pid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not _gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} is still there {seconds} s after SIGKILL")
        time.sleep(0.05)


class Killer(threading.Thread):
    """Every `low`–`high` seconds: SIGKILL one of the servers (round robin) and start it again; at most
    `max_kills` times when given."""

    def __init__(self, servers: list[Server], low=1.0, high=3.0, seed=3, first=0.5, max_kills=None):
        super().__init__(daemon=True)
        self.servers, self.low, self.high, self.first, self.max_kills = servers, low, high, first, max_kills
        self.random = random.Random(seed)
        self.halt = threading.Event()
        self.kills = 0
        self.error: BaseException | None = None

    def run(self):
        try:
            n, pause = 0, self.first  # the first kill early, so a short run sees one too
            while (self.max_kills is None or self.kills < self.max_kills) and not self.halt.wait(pause):
                pause = self.random.uniform(self.low, self.high)
                server = self.servers[n % len(self.servers)]
                n += 1
                server.kill()
                self.kills += 1
                server.start(wait=False)  # the clients find it again when it listens
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            self.error = exc

    def stop(self):
        self.halt.set()
        self.join(timeout=60)


# ----------------------------------------------------------------------------------------- PostgreSQL

def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Cluster:
    """A throwaway PostgreSQL/PostGIS cluster under /tmp on a free port (initdb, start, SIGKILL, restart)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="gp-faults-pg-", dir="/tmp"))
        self.data, self.sock, self.log = self.root / "data", self.root / "run", self.root / "server.log"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(_as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run(_as_postgres(["mkdir", "-p", str(self.sock)]), check=True)

    def url(self, database: str, driver="postgresql+psycopg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                                     "-t", "120", "start", "-o",
                                     f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 "
                                     f"-c max_connections=100"]),
                       check=True, stdout=subprocess.DEVNULL)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])

    def processes(self) -> list[int]:
        """The postmaster and every backend of this cluster, found by their working directory (the data
        directory): a backend forked a moment ago, or one the postmaster's death orphaned, is found too."""
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if (d / "cwd").readlink() == self.data and not _gone(int(d.name)):
                        out.append(int(d.name))
                except OSError:
                    continue
        return out

    def kill(self, seconds: float = 20) -> int:
        """SIGKILL the postmaster, then wait until its backends have noticed and exited (a backend still busy
        after `seconds` is SIGKILLed too, as the end of the machine would). Returns how many processes went."""
        os.kill(self.postmaster_pid(), signal.SIGKILL)
        deadline, gone = time.monotonic() + seconds, set()
        while procs := self.processes():
            gone.update(procs)
            if time.monotonic() > deadline:
                for p in procs:
                    os.kill(p, signal.SIGKILL)
            time.sleep(0.05)
        return len(gone)

    def destroy(self) -> None:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)


def prepare_database(url: str) -> str:
    """Migrations, demo grids, catalog and calendar in a fresh database (in a child process: the app
    extensions of this process stay bound to the test app). Returns a new inspector's username."""
    out = subprocess.run([sys.executable, __file__, "prepare", url], check=True, capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT / "backend")))
    return json.loads(out.stdout.strip().splitlines()[-1])["username"]


def _prepare(url: str) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from flask_migrate import upgrade

    from gridpatrol import create_app
    from gridpatrol.auth import services as auth
    from gridpatrol.catalog import services as catalog
    from gridpatrol.extensions import db
    from gridpatrol.grids import importer
    from gridpatrol.grids import services as grids
    from helpers import DEMO_DISTRICT, PASSWORD

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    geodata = ROOT / "geodata"
    with app.app_context():
        upgrade()
        grids.area_names(json.loads((geodata / "areas.json").read_text()))
        importer.import_grids((geodata / "demo_district.geojson").read_bytes(), "demo.geojson")
        catalog.load_catalog(json.loads((geodata / "catalog.json").read_text()))
        catalog.load_calendar(json.loads((geodata / "calendar.json").read_text()))
        auth.create_user(username="faults", password=PASSWORD, display_name="faults", roles=["inspector"],
                         scope=[DEMO_DISTRICT], team_ids=[], grid_codes=[])
        db.session.commit()
    print(json.dumps({"username": "faults"}))


# ----------------------------------------------------------------------------------------- cutting proxy

class CuttingProxy:
    """A TCP proxy to `target_port` that drops a share of the connections at a random point of the request
    (client → server bytes) or of the response (server → client bytes), closing both sides with a reset."""

    def __init__(self, target_port: int, cut_share=0.4, seed=5, up_bytes=(1, 12_000), down_bytes=(1, 900)):
        self.target = ("127.0.0.1", target_port)
        self.cut_share, self.up_bytes, self.down_bytes = cut_share, up_bytes, down_bytes
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"connections": 0, "cut_request": 0, "cut_response": 0, "planned_cut_not_reached": 0}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _plan(self):
        with self.lock:
            self.counts["connections"] += 1
            r = self.random.random()
            if r < self.cut_share / 2:
                return "up", self.random.randint(*self.up_bytes)
            if r < self.cut_share:
                return "down", self.random.randint(*self.down_bytes)
            return None, None

    def _count(self, name):
        with self.lock:
            self.counts[name] += 1

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket):
        direction, limit = self._plan()
        try:
            upstream = socket.create_connection(self.target, timeout=60)
        except OSError:
            client.close()
            return
        cut = threading.Event()

        def pipe(src, dst, name):
            sent = 0
            try:
                while not cut.is_set():
                    data = src.recv(4096)
                    if not data:
                        break
                    if direction == name and sent + len(data) >= limit:
                        dst.sendall(data[:limit - sent])
                        self._count("cut_request" if name == "up" else "cut_response")
                        cut.set()
                        break
                    dst.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                if cut.is_set():
                    for s in (client, upstream):
                        _reset(s)
                else:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass

        up = threading.Thread(target=pipe, args=(client, upstream, "up"), daemon=True)
        up.start()
        pipe(upstream, client, "down")
        up.join(timeout=120)
        if direction and not cut.is_set():
            self._count("planned_cut_not_reached")
        for s in (client, upstream):
            try:
                s.close()
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.listener.close()


def _reset(s: socket.socket) -> None:
    """Break the connection with RST (SO_LINGER 0, no FIN first): the peer sees it broken, not a clean end.
    SHUT_RD only wakes the other pipe thread blocked reading the same socket; it sends nothing."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.shutdown(socket.SHUT_RD)
    except OSError:
        pass


# ----------------------------------------------------------------------------------------- retrying client

@dataclass
class Tally:
    """What a retrying client saw, summed over its requests (thread-safe)."""
    answers: dict = field(default_factory=dict)  # status -> count, every answer received
    connection_errors: int = 0
    retried_with_retry_after: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, status):
        with self.lock:
            self.answers[status] = self.answers.get(status, 0) + 1

    def broken(self):
        with self.lock:
            self.connection_errors += 1

    def waited(self):
        with self.lock:
            self.retried_with_retry_after += 1

    def count(self, predicate) -> int:
        return sum(n for s, n in self.answers.items() if predicate(s))


def send_until_answered(bases: list[str], path: str, key: str, token: str, tally: Tally, *, json_body=None,
                        files=None, data=None, start=0, max_attempts=200, timeout=60, session=None,
                        retry_5xx=True):
    """POST with one Idempotency-Key until a final answer: on a broken connection (or a 5xx) the next server
    is tried; a 409/429/503 carrying Retry-After is waited for and retried. Returns (response, attempts)."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Accept-Encoding": "identity"}
    http = session or requests
    for attempt in range(max_attempts):
        base = bases[(start + attempt) % len(bases)]
        sent_at = time.time()
        try:
            r = http.post(base + path, json=json_body, files=files, data=data, headers=headers, timeout=timeout)
        except RETRYABLE:
            tally.broken()
            time.sleep(min(0.05 * (attempt + 1), 0.5))
            continue
        if not _complete(r):
            tally.broken()
            continue
        tally.answer(r.status_code)
        if r.status_code in (409, 429, 503) and "Retry-After" in r.headers:
            tally.waited()
            time.sleep(min(float(r.headers["Retry-After"]), 2.0) * random.uniform(0.2, 0.6))
            continue
        if r.status_code >= 500 and retry_5xx:
            time.sleep(0.1)
            continue
        r.sent_at = sent_at  # when the attempt that got the answer was sent (wall clock)
        return r, attempt + 1
    raise AssertionError(f"no answer for key {key} after {max_attempts} attempts")


def _complete(r: requests.Response) -> bool:
    """A whole answer: a connection closed inside the header section leaves http.client a response with the
    headers read so far (gunicorn sends its own first); a JSON answer must have its length and parse."""
    length = r.headers.get("Content-Length")
    if length is None or not length.isdigit() or len(r.content) != int(length):
        return False
    if (r.headers.get("Content-Type") or "").split(";")[0] in ("application/json", "application/problem+json"):
        try:
            r.json()
        except ValueError:
            return False
    return "Content-Type" in r.headers


def percentile(values, p) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        _prepare(sys.argv[2])
