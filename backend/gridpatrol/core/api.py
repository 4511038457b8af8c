"""flask-smorest's Api speaking problem+json for every error."""
import functools
import logging

import http
import json

from flask import current_app
import marshmallow as ma
import flask_smorest
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from psycopg.errors import DeadlockDetected, FeatureNotSupported, QueryCanceled, SerializationFailure
from sqlalchemy.exc import DataError, InterfaceError, NotSupportedError, OperationalError
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from .errors import Conflict, Problem, Unavailable

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """webargs nests messages by location and field; clients want `{"a.b": [..]}`."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if not prefix and key in ("json", "form", "files", "query", "headers", "view_args", "querystring"):
                name = ""
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in flatten_errors(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, (list, tuple)) and all(isinstance(m, str) for m in messages):
        out[prefix or "_body"] = list(messages)
    elif isinstance(messages, (list, tuple)):
        for i, value in enumerate(messages):
            for k, v in flatten_errors(value, f"{prefix}.{i}" if prefix else str(i)).items():
                out.setdefault(k, []).extend(v)
    else:
        out[prefix or "_body"] = [str(messages)]
    return out


def problem_response(status: int, title: str, detail: str, errors: dict | None = None, headers: dict | None = None):
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    response = current_app.response_class(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_TYPE)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    return response


def stale_statement(error) -> bool:
    """Did PostgreSQL refuse a statement the connection prepared before a migration changed what it
    answers (0A000, "cached plan must not change result type")? Connections keep their prepared
    statements across requests (core.db); the failed transaction drops them, so a retry is answered.
    Told by the server function that raises it (its message may be translated), or the message."""
    orig = getattr(error, "orig", None)
    return isinstance(error, NotSupportedError) and isinstance(orig, FeatureNotSupported) and (
        orig.diag.source_function == "RevalidateCachedQuery"
        or "cached plan must not change result type" in (orig.diag.message_primary or ""))


def from_the_database(error: Exception) -> bool:
    """Whether an error is the database's answer to a request that was itself fine (database_error)."""
    return isinstance(error, (OperationalError, InterfaceError)) or stale_statement(error)


def database_error(error) -> Problem:
    """An operational database error as the client should see it: two requests that collided
    (deadlock, serialization failure) are a conflict to retry; a statement prepared before a
    migration is refused once per connection, and answers after a retry; a statement that ran past
    REQUEST_STATEMENT_TIMEOUT_S was stopped (asking the same again would be stopped again); anything
    else means the database is restarting or unreachable. Either way nothing was written."""
    orig = getattr(error, "orig", None)
    if isinstance(orig, (DeadlockDetected, SerializationFailure)):
        log.info("requests collided: %s", orig)
        return Conflict("The change collided with another one; read and retry")
    if isinstance(orig, QueryCanceled):  # by its SQLSTATE (57014): the message is in the server's language
        log.warning("statement cancelled: %s", orig)
        return Unavailable(f"The request ran longer than the {current_app.config['REQUEST_STATEMENT_TIMEOUT_S']:g} s "
                           "a request may run (or the database was told to cancel it), and was stopped; nothing was "
                           "changed. Ask for less: a shorter period or a smaller area")
    if stale_statement(error):
        log.warning("prepared statement outlived a schema change: %s", orig)
        return Unavailable("The database schema changed during the request; retry", headers={"Retry-After": "1"})
    log.warning("database unavailable: %s", orig or error)
    return Unavailable("The database did not answer; retry", headers={"Retry-After": "2"})


def database_problem(error):
    """database_error(error), answered as problem+json."""
    problem = database_error(error)
    return problem_response(problem.status, problem.title, problem.detail, None, problem.headers)


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every error is answered."""
    type = ma.fields.String()
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()),
                            metadata={"description": "field → messages, for validation failures"})


class OneSchemaParser(FlaskParser):
    """webargs' parser, with one schema instance per schema class.

    Given a class (`@blp.arguments(TileQuery, ...)`), webargs makes an instance of it for every
    request, and marshmallow copies every declared field into it: about 0.2 ms of each request's
    time. A schema holds nothing of the request it loads (what a load needs is passed to `load()`),
    so one instance, made on the first request, serves them all."""

    # A mistyped filter (?stauts=closed) must not silently answer with everything: query parameters
    # follow the schemas' own `unknown = RAISE` instead of webargs' default of ignoring them.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _get_schema(self, argmap, req):
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            return schema_instance(argmap)
        return super()._get_schema(argmap, req)


@functools.cache
def schema_instance(schema: type[ma.Schema]) -> ma.Schema:
    """The one instance of a schema class that every request loads with."""
    return schema()


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint parsing arguments with OneSchemaParser: every route module's."""
    ARGUMENTS_PARSER = OneSchemaParser()


class ProblemApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        """Document every error response as it is served: application/problem+json."""
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)
    def _register_error_handlers(self):
        self._app.register_error_handler(HTTPException, self.handle_http_exception)
        self._app.register_error_handler(Problem, self.handle_problem)
        self._app.register_error_handler(Exception, self.handle_unexpected)

    def handle_problem(self, error: Problem):
        return problem_response(error.status, error.title, error.detail, error.errors, error.headers)

    def handle_http_exception(self, error: HTTPException):
        data = getattr(error, "data", None) or {}
        errors = None
        detail = data.get("message") or error.description or error.name
        if "messages" in data or "errors" in data:
            errors = flatten_errors(data.get("errors") or data.get("messages"))
            if error.code == 400 and errors:
                detail = "; ".join(m for msgs in errors.values() for m in msgs)
            else:
                detail = "Some values are not valid: " + ", ".join(sorted(errors))
        headers = dict(data.get("headers") or {})
        if error.code == 405:
            headers.update({k: v for k, v in error.get_response().headers.items() if k == "Allow"})
        return problem_response(error.code or 500, error.name, detail, errors, headers)

    def handle_unexpected(self, error: Exception):
        if isinstance(error, HTTPException):
            return self.handle_http_exception(error)
        if from_the_database(error):
            return database_problem(error)
        if isinstance(error, DataError):
            # a value the schemas let through but PostgreSQL refuses (out of range, malformed):
            # the client's input, so 422; logged, because a schema should have said so first
            log.warning("value refused by the database: %s", error.orig)
            return problem_response(422, "Invalid input", "A value is out of range or malformed")
        log.exception("unhandled error")
        return problem_response(500, "Internal Server Error", "An unexpected error; it has been logged")
