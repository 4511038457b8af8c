"""The `gridpatrol` command: db, serve, create-user, import-grids, import-areas, demo, verify-events, purge-keys."""
import gc
import json
import re
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from . import create_app
from .config import Config


def _command_app():
    """The app the commands work with: their statements run unlimited (a rebuild runs minutes);
    `serve` makes its own app, with the served limit."""
    return create_app({"REQUEST_STATEMENT_TIMEOUT_S": 0})


@click.group(cls=FlaskGroup, create_app=_command_app, add_default_commands=False, add_version_option=False)
@click.pass_context
def main(ctx):
    """GridPatrol: grid-based urban management. Settings come from the environment (DATABASE_URL, …)."""
    if ctx.invoked_subcommand == "db":
        # the schema is changed and granted by its owner, the app itself serves as a restricted role
        ctx.ensure_object(ScriptInfo).create_app = _owner_app


def _owner_app():
    return create_app({"SQLALCHEMY_DATABASE_URI": Config.MIGRATE_DATABASE_URL, "REQUEST_STATEMENT_TIMEOUT_S": 0})


# Flask-Migrate's `db` group (upgrade, downgrade, current, history …), plus `db app-role`
from flask_migrate.cli import db as _db_group  # noqa: E402

main.add_command(_db_group, "db")

# tables the application may only read and append to (their triggers refuse the rest as well)
APPEND_ONLY = ("case_events",)
# tables the application only reads
READ_ONLY = ("alembic_version",)
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@_db_group.command("app-role")
@click.argument("name")
@click.option("--password", envvar="GRIDPATROL_APP_PASSWORD", help="its password (or GRIDPATROL_APP_PASSWORD); "
              "without one an existing role keeps its own")
@with_appcontext
def app_role(name, password):
    """Create or update NAME, the LOGIN role the application serves as: it may read and write the
    rows of every table and use every sequence of the schema (the event log: read and append only),
    and nothing else: no TRUNCATE, no DDL on the schema (temporary tables only), it owns nothing.
    Tables and sequences the connecting role (the owner, MIGRATE_DATABASE_URL) creates later are
    granted too; run again after a migration to re-grant everything."""
    from .extensions import db

    if not ROLE_NAME.match(name):
        raise click.ClickException(f"{name!r} is not a role name: lower-case letters, digits and _, at most 63")
    raw = db.session.connection().connection.dbapi_connection
    with raw.cursor() as cur:
        try:
            summary = _grant_app_role(cur, name, password)
        except click.ClickException:
            raw.rollback()
            raise
    db.session.commit()
    click.echo(f"role {name}: {summary}")


def _grant_app_role(cur, name: str, password: str | None) -> str:
    from psycopg import sql

    role = sql.Identifier(name)
    owner, schema, database = cur.execute("SELECT current_user, current_schema(), current_database()").fetchone()
    existing = cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    if name == owner:
        raise click.ClickException(f"{name} is the role running the command (the schema's owner); name another one")
    if existing and existing[0]:
        raise click.ClickException(f"{name} is a superuser: it cannot be restricted")
    attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
    if password:
        attributes = sql.SQL("{} PASSWORD {}").format(attributes, sql.Literal(password))
    verb = "ALTER" if existing else "CREATE"
    cur.execute(sql.SQL(verb + " ROLE {} {}").format(role, attributes))

    schema_id = sql.Identifier(schema)
    cur.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(sql.Identifier(database), role))
    cur.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema_id, role))
    cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, role))
    # what the owner creates from now on (a later migration's tables) is the app's to read and write
    cur.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}")
                .format(schema_id, role))
    cur.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}")
                .format(schema_id, role))
    tables = _own_objects(cur, schema, "r", "p", "v", "m")
    for table in tables:
        target = sql.SQL("{}.{}").format(schema_id, sql.Identifier(table))
        cur.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(target, role))
        rights = ("SELECT, INSERT" if table in APPEND_ONLY else "SELECT" if table in READ_ONLY
                  else "SELECT, INSERT, UPDATE, DELETE")
        cur.execute(sql.SQL("GRANT " + rights + " ON TABLE {} TO {}").format(target, role))
    sequences = _own_objects(cur, schema, "S")
    for sequence in sequences:
        target = sql.SQL("{}.{}").format(schema_id, sql.Identifier(sequence))
        cur.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(target, role))
        cur.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(target, role))
    return (f"{'updated' if verb == 'ALTER' else 'created'}, {len(tables)} tables and {len(sequences)} sequences "
            f"granted in schema {schema} ({', '.join(t for t in APPEND_ONLY if t in tables) or 'no table'} "
            "append-only)")


def _own_objects(cur, schema: str, *kinds: str) -> list[str]:
    """The schema's relations of these kinds, but not the ones an extension brought (PostGIS's
    spatial_ref_sys stays as the extension made it)."""
    return [r[0] for r in cur.execute("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype = 'e')
        ORDER BY c.relname""", (schema, list(kinds))).fetchall()]


@main.command("create-user")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--scope", "scope", multiple=True, required=True, help="admin area code; repeat for several")
@click.option("--team", "teams", multiple=True, type=int)
@click.option("--display-name")
@with_appcontext
def create_user(username, password, roles, scope, teams, display_name):
    """Create a user with roles and a scope."""
    from marshmallow import ValidationError

    from .auth import services
    from .auth.schemas import UserIn
    from .core.errors import Problem
    from .extensions import db

    try:
        body = UserIn().load({"username": username, "password": password, "roles": list(roles), "scope": list(scope),
                              "team_ids": list(teams), "display_name": display_name or username})
        user = services.create_user(**body)
        db.session.commit()
    except ValidationError as exc:
        raise click.ClickException(json.dumps(exc.messages, ensure_ascii=False))
    except Problem as exc:
        raise click.ClickException(exc.detail)
    click.echo(f"user {user.id} {user.username}: {', '.join(user.roles)} in {', '.join(user.scope)}")


@main.command("import-grids")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--code-field", default="code")
@click.option("--name-field", default="name")
@click.option("--dry-run", is_flag=True)
@with_appcontext
def import_grids(path, code_field, name_field, dry_run):
    """Import unit grids from GeoJSON, GeoPackage or a zipped Shapefile (upsert by code)."""
    from .core.errors import Problem
    from .extensions import db
    from .grids import importer

    try:
        result = importer.import_grids(Path(path).read_bytes(), path, code_field, name_field, dry_run=dry_run)
        db.session.commit()
    except Problem as exc:
        raise click.ClickException(f"{exc.detail} {json.dumps(exc.errors or {}, ensure_ascii=False)}")
    click.echo(f"created {result.created}, updated {result.updated}, rejected {len(result.rejected)}")
    for r in result.rejected:
        click.echo(f"  feature {r['index']} ({r['code']}): {r['reason']}")


def _area_faults(areas, known: set[str]) -> dict:
    """What is wrong with each area of an import-areas file, by item."""
    from .grids.services import AREA_LEVELS, area_parent

    if not isinstance(areas, list) or not areas:
        return {"file": ["a non-empty JSON list of areas: [{\"code\": \"310101001\", \"name\": \"…\"}, …]"]}
    faults, seen = {}, set()
    codes = {a.get("code") for a in areas if isinstance(a, dict) and isinstance(a.get("code"), str)}
    for i, a in enumerate(areas):
        code = a.get("code") if isinstance(a, dict) else None
        wrong = {}
        if isinstance(code, str) and code in seen:
            wrong["code"] = [f"{code} is listed twice"]
        elif not isinstance(code, str) or not code.isascii() or not code.isdigit() or len(code) not in AREA_LEVELS:
            wrong["code"] = ["6 digits for a district, 9 for a street, 12 for a community"]
        else:
            parent = area_parent(code)
            if a.get("level", AREA_LEVELS[len(code)]) != AREA_LEVELS[len(code)]:
                wrong["level"] = [f"a code of {len(code)} digits is a {AREA_LEVELS[len(code)]}"]
            if a.get("parent_code", parent) != parent:
                wrong["parent_code"] = [f"the code's own prefix, {parent}"]
            missing = [c for c in (code[:6], code[:9])[:len(code) // 3 - 2] if c not in codes and c not in known]
            if missing:
                wrong["code"] = [f"{', '.join(missing)} is neither in the file nor known"]
        for field, required in (("name", True), ("name_en", False)):
            value = a.get(field) if isinstance(a, dict) else None
            if (value is None and required) or (value is not None and not (isinstance(value, str) and value.strip()
                                                                           and len(value) <= 100)):
                wrong[field] = ["a name of 1 to 100 characters"]
        if isinstance(code, str):
            seen.add(code)
        if wrong:
            faults[f"item {i} ({code})"] = wrong
    return faults


@main.command("import-areas")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def import_areas(path):
    """Name the districts, streets and communities from a JSON list like geodata/areas.json
    ([{"code": "310101001", "name": "…", "name_en": "…"}]; the level and the parent follow from the code):
    added or renamed by code. Grids imported before them keep their areas, now named."""
    from sqlalchemy import select

    from .extensions import db
    from .grids import services as grids
    from .grids.models import AdminArea

    try:
        areas = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"{path}: {exc}")
    known = set(db.session.execute(select(AdminArea.code)).scalars())
    faults = _area_faults(areas, known)
    if faults:
        raise click.ClickException(f"{path}: nothing loaded; " + json.dumps(faults, ensure_ascii=False, sort_keys=True))
    grids.area_names([{**a, "level": grids.AREA_LEVELS[len(a["code"])], "parent_code": grids.area_parent(a["code"])}
                      for a in areas])
    db.session.commit()
    new = {a["code"] for a in areas} - known
    click.echo(f"{len(areas)} areas: {len(new)} added, {len(areas) - len(new)} renamed")


@main.command("demo")
@click.option("--check", is_flag=True, help="print 'empty' or 'loaded' and change nothing")
@click.option("--cases", "n_cases", default=400, show_default=True)
@click.option("--seed", default=2026, show_default=True)
@with_appcontext
def demo(check, n_cases, seed):
    """Load the demo district, catalog, calendar, teams, users and cases into an empty database."""
    from . import demo as demo_module

    if check:
        click.echo("loaded" if demo_module.is_loaded() else "empty")
        return
    if demo_module.is_loaded():
        raise click.ClickException("the demo is already loaded")
    users = demo_module.load(Path(current_app.config["GEODATA_DIR"]), n_cases=n_cases, seed=seed)
    click.echo("demo users (username / password / roles):")
    for u in users:
        click.echo(f"  {u['username']:<14} {u['password']:<18} {', '.join(u['roles'])}")


@main.command("verify-events")
@with_appcontext
def verify_events():
    """Check the hash chain of every case's event log; exit 1 naming any row changed behind our back."""
    from sqlalchemy import text

    from .extensions import db

    bad = db.session.execute(text("""
        SELECT e.id, e.case_id, e.seq FROM case_events e
        LEFT JOIN case_events p ON p.case_id = e.case_id AND p.seq = e.seq - 1
        WHERE e.prev_hash IS DISTINCT FROM p.hash OR e.hash <> case_event_hash(e, p.hash)
        ORDER BY e.case_id, e.seq
    """)).all()
    total = db.session.execute(text("SELECT count(*) FROM case_events")).scalar_one()
    if bad:
        for row in bad:
            click.echo(f"event {row.id} (case {row.case_id}, seq {row.seq}) does not match its chain")
        sys.exit(1)
    click.echo(f"{total} events, every chain intact")


@main.command("purge-keys")
@click.option("--keep-days", type=int, help="keep the keys of this many days (default: IDEMPOTENCY_KEEP_DAYS, 30)")
@click.option("--every", type=click.FloatRange(min=1), help="keep purging, every this many seconds")
@with_appcontext
def purge_keys(keep_days, every):
    """Delete the Idempotency-Keys older than the days they are kept, with their answers (scripts/run keeps
    this running with --every 3600; without it the table grows by every write from the field)."""
    from .core.db import keep_running
    from .core.idempotency import keeping_refused, purge

    days = current_app.config["IDEMPOTENCY_KEEP_DAYS"] if keep_days is None else keep_days
    if why := keeping_refused(days):
        if keep_days is not None:
            raise click.BadParameter(f"{days}: {why}", param_hint="--keep-days")
        raise click.ClickException(f"IDEMPOTENCY_KEEP_DAYS is {days}: {why}")

    def step() -> bool:
        n = purge(days)
        if n or every is None:
            click.echo(f"{n} keys older than {days} days deleted")
        return False

    if every is None:
        step()
    else:
        keep_running("purge-keys", step, every, lambda message: click.echo(message, err=True))


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--workers", default=4, show_default=True)
@click.option("--threads", default=4, show_default=True)
@click.option("--access-log/--no-access-log", default=True, show_default=True, envvar="GRIDPATROL_ACCESS_LOG",
              help="a line per request on standard output (or GRIDPATROL_ACCESS_LOG=0)")
# a worker's memory stays flat over tens of thousands of requests (~101 MB after 9,000 and after 29,000);
# each replacement costs a burst of late requests (the old worker's exit, the new one's first connections,
# ~80-200 ms of a CPU), and every 5,000 requests they decided a constant-rate client's p99 (docs/performance.md,
# fifteenth round). The limit stays as a guard against a leak.
@click.option("--max-requests", default=50_000, show_default=True, envvar="GRIDPATROL_MAX_REQUESTS",
              help="a worker is replaced after about this many requests (± 10%); 0: never")
def serve(host, port, workers, threads, access_log, max_requests):
    """Serve with gunicorn (a production WSGI server)."""
    from gunicorn.app.base import BaseApplication

    from .extensions import db

    app = create_app()
    # the app's own objects (~160,000: modules, schemas, mappers) set aside from the garbage collector
    # before the workers fork: a full collection walked them all, ~110 ms of a worker's threads stopped
    # every few thousand requests, at about the same moment in every worker (docs/performance.md,
    # fourteenth round); and its pages stay shared with the workers instead of copied by the collection
    gc.collect()
    gc.freeze()

    def post_fork(server, worker):
        # a forked worker opens its own database connections, never the arbiter's
        with app.app_context():
            db.engine.dispose(close=False)

    class Server(BaseApplication):
        def load_config(self):
            for k, v in {"bind": f"{host}:{port}", "workers": workers, "threads": threads, "worker_class": "gthread",
                         "timeout": 60, "graceful_timeout": 20, "keepalive": 5, "accesslog": "-" if access_log else None,
                         # the app is built once, here, and the workers are forked from it: a worker
                         # starts (and a replaced one restarts) in milliseconds instead of importing and
                         # building the app on a busy CPU, and the workers share its pages
                         "preload_app": True, "post_fork": post_fork,
                         "max_requests": max_requests, "max_requests_jitter": max_requests // 10}.items():
                self.cfg.set(k, v)

        def load(self):
            return app

    Server().run()


if __name__ == "__main__":
    main()
