"""Webhook deliveries to a real receiver on loopback, with the receiver and the delivery worker
killed (SIGKILL) and restarted mid-stream.

The promise proved here: delivery is at least once, each delivery carrying an id; de-duplicated on
that id, the receiver ends with every event exactly once, and the first receipts of a case's events
come in the case's order. Each body is signed: HMAC-SHA256 of the body with the shared secret."""
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import text

from helpers import close_case, office  # noqa: F401  (office is a fixture)

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SECRET = "receiver-shared-secret-" + uuid.uuid4().hex[:8]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """The receiver process: started, killed with SIGKILL, started again on the same port and log."""

    def __init__(self, tmp_path):
        self.port, self.log = _free_port(), tmp_path / "received.jsonl"
        self.proc = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hooks/gridpatrol"

    def start(self, *opts):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "webhook_receiver.py"), str(self.port),
                                      str(self.log), *map(str, opts)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def received(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


class Worker:
    """`gridpatrol webhooks deliver`, the process deployed beside the app servers."""

    def __init__(self, database_url, tmp_path):
        self.env = dict(os.environ, DATABASE_URL=database_url, WEBHOOK_RETRY_BASE_S="0.2",
                        WEBHOOK_RETRY_MAX_S="1", WEBHOOK_TIMEOUT_S="3", WEBHOOK_ALLOW_PRIVATE="1")
        self.out = open(tmp_path / "worker.log", "a")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "gridpatrol.cli", "webhooks", "deliver", "--poll", "0.2"],
                                     env=self.env, cwd=ROOT, stdout=self.out, stderr=subprocess.STDOUT)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=30) == 0


def scalar(app, sql, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        return db.session.execute(text(sql), params).scalar_one()


def wait_for(app, count_sql, hook_id, limit_s=120):
    """Wait until the count is above zero, and return it (a wait, not a speed check)."""
    deadline = time.monotonic() + limit_s
    while (n := scalar(app, count_sql, h=hook_id)) == 0:
        assert time.monotonic() < deadline, count_sql
        time.sleep(0.1)
    return n


def wait_until_drained(app, hook_id, limit_s=120):
    """Wait for the hook's outbox to hold nothing pending (a wait, not a speed check)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if scalar(app, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :h AND status <> 'delivered'",
                  h=hook_id) == 0:
            return
        time.sleep(0.2)
    raise AssertionError("the outbox was not drained")


def check_receipts(app, hook_id, received):
    """Every queued delivery received, validly signed and unchanged; first receipts in case order."""
    from gridpatrol.extensions import db
    with app.app_context():
        queued = {str(r.uid): r for r in db.session.execute(text(
            "SELECT d.uid, d.case_id, d.body::text AS body, e.seq FROM webhook_deliveries d"
            " JOIN case_events e ON e.id = d.event_id WHERE d.webhook_id = :h"), {"h": hook_id})}
    for r in received:
        expected = "sha256=" + hmac.new(SECRET.encode(), r["body"].encode(), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(r["signature"], expected), r["delivery"]
        assert r["body"] == queued[r["delivery"]].body  # the same bytes, however often sent
        assert json.loads(r["body"])["delivery_id"] == r["delivery"]
    first = list(dict.fromkeys(r["delivery"] for r in received))
    assert set(first) == set(queued), (len(first), len(queued))
    per_case = defaultdict(list)
    for uid in first:
        per_case[queued[uid].case_id].append(queued[uid].seq)
    assert all(seqs == sorted(seqs) for seqs in per_case.values()), per_case
    return len(queued), Counter(r["delivery"] for r in received)


@pytest.fixture
def setup(app, office, app_database_url, tmp_path):
    receiver = Receiver(tmp_path)
    worker = Worker(app_database_url, tmp_path)  # as deployed: the restricted role
    hook = office.hook(url=receiver.url, secret=SECRET)
    yield receiver, worker, hook
    for proc in (receiver.proc, worker.proc):
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()


def test_receiver_and_worker_killed_mid_stream_every_event_arrives(app, office, setup):
    receiver, worker, hook = setup
    receiver.start()
    worker.start()
    cases = []

    def work(n):
        for _ in range(n):
            case = office.report(len(cases) % 9)
            cases.append(case["id"])
            close_case(office, case["id"])

    work(4)                      # both up
    wait_for(app, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :h AND status = 'delivered'",
             hook["id"])         # the worker is running and delivering
    receiver.kill()              # the receiver goes down mid-stream
    work(4)
    # the worker meets the closed port and backs off
    refused = wait_for(app, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :h AND attempts > 0"
                            " AND status = 'pending'", hook["id"])
    receiver.start()             # back on the same port
    worker.kill()                # and now the worker dies, whatever it was doing
    work(2)
    worker.start()
    work(2)
    wait_until_drained(app, hook["id"])
    worker.stop()

    events = scalar(app, "SELECT count(*) FROM case_events WHERE case_id = ANY(:c)", c=cases)
    queued, receipts = check_receipts(app, hook["id"], receiver.received())
    duplicates = sum(n - 1 for n in receipts.values())
    retried = scalar(app, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :h AND attempts > 1",
                     h=hook["id"])
    status = office.admin.get(f"/api/v1/webhooks/{hook['id']}").get_json()["deliveries"]
    print(f"\n[webhooks: receiver and worker killed] cases={len(cases)} events={events} queued={queued} "
          f"received={sum(receipts.values())} distinct={len(receipts)} duplicates={duplicates} "
          f"pending-after-refusals={refused} retried={retried} admin view={status}")
    assert events == queued == len(receipts) == 12 * 6
    assert refused > 0 and retried > 0        # the receiver really was down for some
    assert status["pending"] == 0 and status["delivered"] == queued and status["last_status_code"] == 204


def test_an_answer_lost_after_receipt_is_sent_again_with_the_same_delivery_id(app, office, setup):
    receiver, worker, hook = setup
    receiver.start("--drop", 3, "--fail", 2)   # two 503s first, then three bodies read and no answer
    case = office.report()
    close_case(office, case["id"])
    worker.start()
    wait_until_drained(app, hook["id"])
    worker.stop()
    queued, receipts = check_receipts(app, hook["id"], receiver.received())
    duplicates = {uid: n for uid, n in receipts.items() if n > 1}
    print(f"\n[webhooks: lost answers] queued={queued} received={sum(receipts.values())} "
          f"duplicated deliveries={len(duplicates)}")
    assert queued == 6 and len(receipts) == 6
    assert sum(n - 1 for n in duplicates.values()) == 3   # each dropped answer meant one more send
    failed_first = office.admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert max(d["attempts"] for d in failed_first) >= 2
    assert all(d["status"] == "delivered" and d["last_status_code"] == 204 for d in failed_first)


def test_a_receiver_that_never_answers_well_ends_failed_and_visible(app, office, setup):
    from gridpatrol.extensions import db
    receiver, worker, hook = setup
    receiver.start("--fail", 1000)
    office.report()
    worker.env["WEBHOOK_MAX_ATTEMPTS"] = "3"
    worker.start()
    deadline = time.monotonic() + 60
    while scalar(app, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :h AND status = 'failed'",
                 h=hook["id"]) == 0:
        assert time.monotonic() < deadline, "never gave up"
        time.sleep(0.2)
    worker.stop()
    items = office.admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=failed").get_json()["items"]
    assert len(items) == 1 and items[0]["attempts"] == 3 and items[0]["last_status_code"] == 503
    assert "503" in items[0]["last_error"]
    assert office.admin.get(f"/api/v1/webhooks/{hook['id']}").get_json()["deliveries"]["failed"] == 1
    with app.app_context():
        assert db.session.execute(text("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :h"),
                                  {"h": hook["id"]}).scalar_one() == 1
