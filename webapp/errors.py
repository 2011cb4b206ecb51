"""Friendly error pages: no tracebacks, a request id to quote on a 500."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, SecurityError

log = logging.getLogger("webapp.errors")

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Nothing was changed."),
    403: ("Not allowed", "Your account cannot open this page."),
    404: ("Page not found", "There is no page at this address."),
    405: ("Not allowed", "This page does not accept that kind of request."),
    413: ("Too large", "What you sent is larger than this page accepts."),
    429: ("Too many attempts", "Please wait a minute before trying again."),
    500: ("Something went wrong", "The error has been logged. Nothing you did caused it."),
}


def render_error(code: int, message: str | None = None):
    if code >= 500:
        return server_error_page()
    title, default = MESSAGES.get(code, ("Error", "The request failed."))
    return render_template(
        "error.html",
        code=code,
        title=title,
        message=message or default,
        request_id=g.get("request_id"),
    ), code


#: What a 500 answers when even its template cannot be rendered.
BARE_500 = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    "<title>Something went wrong · Rendezvous</title></head><body><h1>Something went "
    "wrong</h1><p>The error has been logged. Nothing you did caused it.</p>"
    '<p><a href="/">Go to the start page</a></p></body></html>'
)


def server_error_page():
    """The 500 page, whatever state the failed request left behind.

    The request's database session may be unusable (a failed flush leaves its transaction
    broken and every loaded object expired, the current user included) or the database may be
    down, so the page touches neither: it drops the request's session and renders its own
    template without the context processors (which would load the current user)."""
    discard_request_session()
    title, message = MESSAGES[500]
    request_id = g.get("request_id")
    try:
        from flask import current_app, url_for

        try:
            stylesheet = url_for("static", filename="app.css")
        except Exception:  # noqa: BLE001 - the page does without its stylesheet
            stylesheet = None
        body = current_app.jinja_env.get_template("error_500.html").render(
            title=title, message=message, request_id=request_id, stylesheet=stylesheet
        )
    except Exception:  # noqa: BLE001 - the last resort must not fail
        log.exception("the 500 page could not be rendered (request %s)", request_id)
        body = BARE_500
    return body, 500, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


def discard_request_session() -> None:
    """Roll back and close the request's database session, if it has one, ignoring failures
    (a later use in this request opens a fresh one)."""
    session = g.pop("db_session", None)
    if session is None:
        return
    try:
        session.rollback()
    except Exception:  # noqa: BLE001 - the connection itself may be gone
        log.warning("rolling back the failed request's session failed", exc_info=True)
    try:
        session.close()
    except Exception:  # noqa: BLE001
        log.warning("closing the failed request's session failed", exc_info=True)


UNKNOWN_HOST = (
    "This address is not where Rendezvous is served (the Host header names another "
    "site). Open it at its public address; nothing was changed."
)


def init_app(app: Flask) -> None:
    @app.errorhandler(SecurityError)
    def _untrusted_host(_exc):
        # The URL adapter was never built for this request, so no template (they build URLs).
        if request.path.startswith("/api/"):
            from webapp.api.errors import error_response

            return error_response(400, UNKNOWN_HOST)
        return UNKNOWN_HOST, 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(CSRFError)
    def _csrf(_exc):
        return render_error(
            400,
            "This form has expired or was not sent from Rendezvous. Reload the page and try "
            "again; nothing was changed.",
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code is None or exc.code >= 500:
            return server_error_page()
        response = render_error(exc.code)
        if exc.code == 429 or exc.code == 405:
            body, code = response
            resp = app.make_response((body, code))
            for name, value in exc.get_response().headers.items():
                if name.lower() in {"retry-after", "allow"}:
                    resp.headers[name] = value
            return resp
        return response

    @app.errorhandler(InternalServerError)
    @app.errorhandler(Exception)
    def _unhandled(exc):
        original = getattr(exc, "original_exception", None) or exc
        log.error(
            "unhandled error %s in request %s",
            type(original).__name__,
            g.get("request_id"),
            exc_info=original,
        )
        return server_error_page()
