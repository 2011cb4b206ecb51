"""Friendly error pages: no tracebacks, a request id to quote on a 500."""

from __future__ import annotations

import logging

from flask import Flask, g, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

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
    title, default = MESSAGES.get(code, ("Error", "The request failed."))
    return render_template(
        "error.html", code=code, title=title, message=message or default,
        request_id=g.get("request_id"),
    ), code


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(_exc):
        return render_error(
            400, "This form has expired or was not sent from Rendezvous. Reload the page and try "
            "again; nothing was changed.",
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        if exc.code is None or exc.code >= 500:
            return render_error(500)
        response = render_error(exc.code)
        if exc.code == 429 or exc.code == 405:
            body, code = response
            resp = app.make_response((body, code))
            for name, value in (exc.get_response().headers.items()):
                if name.lower() in {"retry-after", "allow"}:
                    resp.headers[name] = value
            return resp
        return response

    @app.errorhandler(InternalServerError)
    @app.errorhandler(Exception)
    def _unhandled(exc):
        original = getattr(exc, "original_exception", None) or exc
        log.error("unhandled error %s in request %s", type(original).__name__,
                  g.get("request_id"), exc_info=original)
        return render_error(500)
