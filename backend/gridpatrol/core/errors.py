"""Domain errors. Services raise these; the API turns them into problem+json (RFC 9457)."""


class Problem(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str = "", errors: dict | None = None, *, title: str | None = None,
                 headers: dict | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        if title:
            self.title = title


class BadRequest(Problem):
    status, title = 400, "Bad request"


class Unauthorized(Problem):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "Sign in first", **kw):
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="gridpatrol"'})
        super().__init__(detail, **kw)


class Forbidden(Problem):
    status, title = 403, "Forbidden"


class NotFound(Problem):
    status, title = 404, "Not found"


class Conflict(Problem):
    status, title = 409, "Conflict"


class Unavailable(Problem):
    status, title = 503, "Service Unavailable"


class PreconditionFailed(Problem):
    status, title = 412, "Precondition failed"


class TooLarge(Problem):
    status, title = 413, "Payload too large"


class UnsupportedMedia(Problem):
    status, title = 415, "Unsupported media type"


class Invalid(Problem):
    status, title = 422, "Invalid input"

    def __init__(self, detail: str = "", errors: dict | None = None, **kw):
        super().__init__(detail or "Some values are not valid", errors, **kw)


def invalid(field: str, message: str) -> Invalid:
    """The common case: one field, one message."""
    return Invalid(f"{field}: {message}", {field: [message]})


class PreconditionRequired(Problem):
    status, title = 428, "Precondition required"


class RateLimited(Problem):
    status, title = 429, "Too many requests"
