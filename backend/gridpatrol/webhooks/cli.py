"""`gridpatrol webhooks deliver`: the delivery worker, run beside the app servers (one or more)."""
import signal
import threading

import click
from flask import current_app

from . import delivery
from .routes import blp


@blp.cli.command("deliver")
@click.option("--threads", default=2, show_default=True, help="deliveries in flight at once")
@click.option("--poll", default=1.0, show_default=True, help="seconds between looks for retries that came due")
@click.option("--once", is_flag=True, help="send what is due now and stop")
@click.option("--webhook", type=int, help="with --once: only this webhook's deliveries")
def deliver(threads, poll, once, webhook):
    """Send the webhook outbox's deliveries until stopped (SIGTERM or SIGINT)."""
    if once:
        click.echo(f"{delivery.deliver_all(webhook)} deliveries attempted")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    delivery.run(current_app._get_current_object(), stop, threads=threads, poll=poll)
