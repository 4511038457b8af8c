"""Shared bits of the reliability suite: many calls at once, SQL counts, the live server's workers."""
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier
from urllib.parse import urlparse

from sqlalchemy import text


def at_once(n, call):
    """Run call(i) n times from n threads released together; the results in order."""
    barrier = Barrier(n)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def scalar(app, sql, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        return db.session.execute(text(sql), params).scalar_one()


def execute(app, sql, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        db.session.execute(text(sql), params)
        db.session.commit()


def server_pids(base_url):
    """(master pid, [worker pids]) of the `gridpatrol serve` listening on base_url's port."""
    port = str(urlparse(base_url).port)
    procs = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"serve" in argv and port.encode() in argv:
            procs[int(d.name)] = ppid
    masters = [p for p, pp in procs.items() if pp not in procs]
    assert len(masters) == 1, procs
    return masters[0], sorted(p for p, pp in procs.items() if pp == masters[0])


def vm_kib(pid, field="VmHWM"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def worker_of(conn_sock, workers):
    """Which worker pid holds the server end of a client socket (an open keep-alive connection)."""
    local_ip, local_port = conn_sock.getsockname()[:2]
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        rem_port = int(parts[2].split(":")[1], 16)
        if rem_port == local_port:
            inodes.add(parts[9])
    for pid in workers:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                target = fd.readlink()
            except OSError:
                continue
            if str(target).startswith("socket:[") and str(target)[8:-1] in inodes:
                return pid
    return None
