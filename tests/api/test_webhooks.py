"""Outgoing webhooks through the API: registering, scope and roles, the outbox written in the event's
own transaction, and what an admin sees of deliveries. Delivery to a live receiver is in
tests/integration/test_webhook_delivery.py."""
import json
import uuid

import pytest
from sqlalchemy import text

from helpers import close_case, office  # noqa: F401  (office is a fixture)


def rows(app, sql, **params):
    from gridpatrol.extensions import db
    with app.app_context():
        return [dict(r) for r in db.session.execute(text(sql), params).mappings()]


def outbox(app, hook_id):
    return rows(app, "SELECT d.*, d.body::text AS body_text FROM webhook_deliveries d WHERE webhook_id = :h"
                     " ORDER BY event_id", h=hook_id)


# ------------------------------------------------------------------ registering

def test_an_admin_registers_a_webhook_and_sees_the_secret_once(office):
    created = office.hook(url="https://receiver.example.org/gridpatrol", events=["case.created", "case.closed"],
                          description="区城运中心")
    assert created["secret"] and len(created["secret"]) >= 32
    assert created["events"] == ["case.created", "case.closed"]
    assert created["scope"] == [office.district["code"]] and created["active"] is True
    assert created["deliveries"] == {"pending": 0, "delivered": 0, "failed": 0, "last_attempt_at": None,
                                     "last_status_code": None, "last_error": None}
    one = office.admin.get(f"/api/v1/webhooks/{created['id']}").get_json()
    listed = office.admin.get("/api/v1/webhooks").get_json()
    assert "secret" not in one and all("secret" not in h for h in listed["items"])
    assert created["id"] in [h["id"] for h in listed["items"]]


def test_a_given_secret_is_kept(office):
    created = office.hook(secret="s" * 20)
    assert created["secret"] == "s" * 20


@pytest.mark.parametrize("body, field", [
    ({"url": "ftp://example.org/x"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "http://example.org/x", "events": ["case.exploded"]}, "events"),
    ({"url": "http://example.org/x", "scope": ["310199"]}, "scope"),  # outside the admin's own scope
    ({"url": "http://example.org/x", "secret": "short"}, "secret"),
    ({"url": "http://example.org/x", "owner": 1}, "owner"),
    ({"events": ["case.created"]}, "url"),
])
def test_bad_registrations_are_refused_naming_the_field(app, office, body, field):
    before = rows(app, "SELECT count(*) AS n FROM webhooks")[0]["n"]
    r = office.admin.post("/api/v1/webhooks", json=body)
    assert r.status_code == 422, r.get_json()
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert field in json.dumps(r.get_json()["errors"])
    assert rows(app, "SELECT count(*) AS n FROM webhooks")[0]["n"] == before


@pytest.mark.parametrize("role", ["dispatcher", "supervisor", "inspector", "handler"])
def test_only_admins_manage_webhooks(office, make_user, role):
    hook = office.hook()
    other = make_user(role, scope=[office.district["code"]])
    assert other.get("/api/v1/webhooks").status_code == 403
    assert other.post("/api/v1/webhooks", json={"url": "http://example.org/x"}).status_code == 403
    assert other.get(f"/api/v1/webhooks/{hook['id']}").status_code == 403
    assert other.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 403


def test_another_districts_admin_does_not_see_the_webhook(office, make_user, district):
    hook = office.hook()
    outsider = make_user("admin", scope=["310199"])
    assert hook["id"] not in [h["id"] for h in outsider.get("/api/v1/webhooks").get_json()["items"]]
    for call in (lambda: outsider.get(f"/api/v1/webhooks/{hook['id']}"),
                 lambda: outsider.client.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False},
                                               headers={"Authorization": f"Bearer {outsider.token}"}),
                 lambda: outsider.get(f"/api/v1/webhooks/{hook['id']}/deliveries"),
                 lambda: outsider.delete(f"/api/v1/webhooks/{hook['id']}")):
        assert call().status_code == 404
    assert office.admin.get(f"/api/v1/webhooks/{hook['id']}").status_code == 200


def test_patch_changes_events_and_pauses(office):
    hook = office.hook()
    r = office.admin.client.patch(f"/api/v1/webhooks/{hook['id']}", json={"events": ["case.dispatched"],
                                  "active": False}, headers={"Authorization": f"Bearer {office.admin.token}"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["events"] == ["case.dispatched"] and r.get_json()["active"] is False


# ------------------------------------------------------------------ the outbox

def test_every_event_of_a_case_is_queued_once_per_webhook_in_order(app, office):
    every = office.hook()
    closing = office.hook(events=["case.created", "case.closed"])
    case = office.report()
    close_case(office, case["id"])
    events = rows(app, "SELECT id, seq, action FROM case_events WHERE case_id = :c ORDER BY seq", c=case["id"])
    assert [e["action"] for e in events] == ["report", "register", "dispatch", "accept", "handle", "verify_pass"]

    queued = outbox(app, every["id"])
    assert [d["event_id"] for d in queued] == [e["id"] for e in events]
    assert [d["event_type"] for d in queued] == ["case.created", "case.registered", "case.dispatched",
                                                  "case.accepted", "case.handled", "case.closed"]
    assert {d["status"] for d in queued} == {"pending"} and len({d["uid"] for d in queued}) == 6
    assert [d["event_type"] for d in outbox(app, closing["id"])] == ["case.created", "case.closed"]

    body = json.loads(queued[-1]["body_text"])
    assert body["delivery_id"] == str(queued[-1]["uid"]) and body["type"] == "case.closed"
    assert body["event"]["seq"] == 6 and body["event"]["to_status"] == "closed"
    assert body["case"]["number"] == case["number"] and body["case"]["status"] == "closed"
    assert body["case"]["grid_code"] == office.district["grids"][4]
    figures = office.admin.get(f"/api/v1/webhooks/{every['id']}").get_json()["deliveries"]
    assert figures["pending"] == 6 and figures["delivered"] == 0


def test_a_refused_action_queues_nothing(app, office):
    hook = office.hook()
    case = office.report()
    before = len(outbox(app, hook["id"]))
    # a stale version: 412, nothing written
    office.dispatcher.act(case["id"], "register", version=case["version"] + 5, expect=412)
    # the wrong role: 403, nothing written
    office.inspector.act(case["id"], "register", expect=403)
    assert len(outbox(app, hook["id"])) == before == 1


def test_the_outbox_row_is_in_the_events_transaction(app, office):
    """An event rolled back takes its deliveries with it; one committed has them."""
    from gridpatrol.extensions import db
    hook = office.hook()
    case = office.report()
    with app.app_context():
        db.session.execute(text("INSERT INTO case_events (case_id, action, to_status, payload) "
                                "VALUES (:c, 'escalate', 'reported', '{}')"), {"c": case["id"]})
        inside = db.session.execute(text("SELECT count(*) FROM webhook_deliveries WHERE webhook_id = :h"),
                                    {"h": hook["id"]}).scalar_one()
        db.session.rollback()
    assert inside == 2
    assert len(outbox(app, hook["id"])) == 1


def test_cases_outside_the_webhooks_areas_are_not_queued(app, office, make_user):
    hook = office.hook()
    # the office's district is the fixture's; a case in the demo district is not the hook's business
    other_inspector = make_user("inspector", scope=["310199"])
    other_inspector.report()
    mine = office.report()
    assert [d["case_id"] for d in outbox(app, hook["id"])] == [mine["id"]]


def test_a_paused_webhook_queues_nothing_new(app, office):
    hook = office.hook(active=False)
    office.report()
    assert outbox(app, hook["id"]) == []


def test_python_and_sql_name_the_events_alike(app):
    from gridpatrol.webhooks.services import EVENT_TYPES
    from gridpatrol.extensions import db
    with app.app_context():
        for action, event_type in EVENT_TYPES.items():
            assert db.session.execute(text("SELECT webhook_event_type(:a)"), {"a": action}).scalar_one() == event_type


def test_deliveries_are_listed_and_a_failed_one_retried(app, office):
    from gridpatrol.extensions import db
    hook = office.hook()
    office.report()
    listed = office.admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "pending"
    delivery = listed["items"][0]
    with app.app_context():
        db.session.execute(text("UPDATE webhook_deliveries SET status = 'failed', attempts = 20, "
                                "last_error = 'connection refused' WHERE id = :i"), {"i": delivery["id"]})
        db.session.commit()
    failed = office.admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=failed").get_json()
    assert [d["id"] for d in failed["items"]] == [delivery["id"]]
    assert failed["items"][0]["last_error"] == "connection refused"
    r = office.admin.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry")
    assert r.status_code == 200 and r.get_json()["status"] == "pending"
    assert office.admin.post(f"/api/v1/webhooks/{hook['id']}/deliveries/999999999/retry").status_code == 404
    assert office.admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries?status=lost").status_code == 422


def test_deleting_a_webhook_removes_its_queue(app, office):
    hook = office.hook()
    office.report()
    assert office.admin.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    assert outbox(app, hook["id"]) == []
    assert office.admin.get(f"/api/v1/webhooks/{hook['id']}").status_code == 404


def test_a_callers_contact_never_leaves_in_a_webhook(app, office):
    hook = office.hook()
    lon, lat = office.district["point"](2)
    contact = {"name": "Zhoufang Meiling", "phone": "+86 139 8765 4321", "email": "meiling.canary@example.org"}
    office.dispatcher.report(lon=lon, lat=lat, contact=contact, description="12345 热线来电")
    queued = outbox(app, hook["id"])
    assert len(queued) == 1 and "12345 热线来电" in queued[0]["body_text"]
    for value in contact.values():
        assert value not in queued[0]["body_text"]


def test_an_admin_of_part_of_the_areas_cannot_manage_the_webhook(office, make_user):
    """Holding one grid of a district's webhook is not enough to read, redirect, resend or delete it."""
    hook = office.hook()
    narrow = make_user("admin", scope=[office.district["grids"][0]])
    assert hook["id"] not in [h["id"] for h in narrow.get("/api/v1/webhooks").get_json()["items"]]
    r = narrow.client.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": "http://elsewhere.example.org/x"},
                            headers={"Authorization": f"Bearer {narrow.token}"})
    assert r.status_code == 404
    assert narrow.get(f"/api/v1/webhooks/{hook['id']}/deliveries").status_code == 404
    assert narrow.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 404
    assert office.admin.get(f"/api/v1/webhooks/{hook['id']}").get_json()["url"] == hook["url"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost:9/x", "http://169.254.169.254/latest",
                                 "http://10.0.0.1/x", "http://[::1]:9/x"])
def test_internal_addresses_are_not_sent_to(app, office, url):
    """The worker runs inside the city's network: it does not become a way into it."""
    from gridpatrol.webhooks import delivery
    hook = office.hook(url=url)
    office.report()
    assert app.config["WEBHOOK_ALLOW_PRIVATE"] is False
    with app.app_context():
        assert delivery.deliver_all(hook["id"]) == 1
    (d,) = office.admin.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert d["status"] == "pending" and d["attempts"] == 1 and d["last_status_code"] is None
    assert "internal address" in d["last_error"]


def test_a_receiver_that_trickles_its_answer_is_cut_off(app):
    """The timeout bounds the whole exchange: a receiver sending a byte a second never holds a sender."""
    import socket
    import threading
    import time
    from gridpatrol.webhooks import delivery

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def trickle():
        conn, _ = server.accept()
        conn.recv(65536)
        try:
            for ch in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 60:
                conn.send(bytes([ch]))
                time.sleep(0.2)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    with app.app_context():
        app.config["WEBHOOK_ALLOW_PRIVATE"] = True
        try:
            started = time.monotonic()
            code, error = delivery.post(f"http://127.0.0.1:{port}/in", b"{}", {}, timeout=1.0)
            took = time.monotonic() - started
        finally:
            app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    server.close()
    print(f"\n[webhooks: trickling receiver] cut after {took:.1f} s: {error}")
    assert code is None and error == "no complete answer within 1 s"
