"""`gridpatrol serve` builds the app once and forks its workers from it (preload): before the fork it
sets the app's objects aside from the garbage collector (gc.freeze), so a worker's full collection does
not walk them (~110 ms of every thread of the worker stopped, every few thousand reports, without it);
it serves with the statement limit, and replaces a worker only after many requests."""
import gc

from click.testing import CliRunner


def test_serve_freezes_the_preloaded_app_before_the_workers_fork(monkeypatch):
    from gunicorn.app.base import BaseApplication
    from gridpatrol.cli import main

    seen = {}

    def run(self):  # instead of serving: what the arbiter holds when it would fork
        seen.update(frozen=gc.get_freeze_count(), preload=self.cfg.preload_app, app=self.load())

    monkeypatch.setattr(BaseApplication, "run", run)
    gc.unfreeze()
    try:
        result = CliRunner().invoke(main, ["serve", "--port", "0", "--no-access-log"])
    finally:
        gc.unfreeze()
    assert result.exit_code == 0, result.output
    assert seen["preload"] is True and seen["app"].name == "gridpatrol"
    assert seen["frozen"] > 10_000, seen["frozen"]
    # and it serves with the statement limit (REQUEST_STATEMENT_TIMEOUT_S, 60 s by default)
    assert "-c statement_timeout=60000" in seen["app"].config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"]


def test_serve_replaces_a_worker_rarely_and_as_configured(monkeypatch):
    """Each replacement of a worker delays the requests of its moment; every 5,000 requests they decided
    a constant-rate client's p99 (docs/performance.md, fifteenth round): 50,000 by default, ± 10%."""
    from gunicorn.app.base import BaseApplication
    from gridpatrol.cli import main

    seen = []
    monkeypatch.setattr(BaseApplication, "run",
                        lambda self: seen.append((self.cfg.max_requests, self.cfg.max_requests_jitter)))
    for env, expected in (({}, (50_000, 5_000)), ({"GRIDPATROL_MAX_REQUESTS": "0"}, (0, 0))):
        result = CliRunner().invoke(main, ["serve", "--port", "0", "--no-access-log"], env=env)
        gc.unfreeze()
        assert result.exit_code == 0, result.output
        assert seen.pop() == expected
