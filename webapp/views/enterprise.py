"""Settings → Calendar integration → Enterprise Connect (IT admin): connect a domain's service
account, link its mailboxes in bulk, follow progress, retry, unlink, disconnect, reset."""

from __future__ import annotations

import csv
import io

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from broker.ratelimit import BACKGROUND
from models import LinkStatus, MailboxStatus, Role, utcnow
from webapp import callbacks, deps
from webapp.db import db_session
from webapp.errors import render_error
from webapp.public_urls import external_url
from webapp.security import allow
from webapp.services import accounts, background, revocations
from webapp.services.enterprise import (
    address_list,
    domains,
    list_summaries,
    mailboxes,
    pace,
    rooms,
    teardown,
)
from webapp.services.errors import (
    Declined,
    Forbidden,
    Invalid,
    NotFound,
    ServiceError,
    StateRejected,
)
from webapp.views import flash_error, oauth_session_nonce
from webapp.web import actor, body_limit

bp = Blueprint("enterprise", __name__, url_prefix="/admin/calendar/enterprise")

#: Largest pasted list, and largest CSV file, of addresses: 20,000 lines of name, address and
#: time zone fit with room to spare. Only the form that takes them accepts a body this large.
MAX_LIST_BYTES = 8 * 1024 * 1024
#: A refused paste up to this size is put back into the text box to be corrected.
KEEP_PASTED = 256 * 1024


def _domain_or_404(link_id: int):
    try:
        return domains.domain_link(db_session(), actor(), link_id)
    except NotFound:
        abort(404)


def _page_of(link_id: int) -> int:
    """The page of a domain's mailbox table asked for (``domain`` names the domain it is for;
    other domains show their first page)."""
    if request.args.get("domain", "") != str(link_id):
        return 1
    raw = request.args.get("page", "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1


@bp.route("/")
@allow(Role.ADMIN)
def index():
    """Show the guides, the connected domains and their mailboxes."""
    db, who = db_session(), actor()
    status = request.args.get("status") or None
    query = (request.args.get("q") or "").strip()[:100] or None
    broker = deps.broker()
    views = []
    for link in domains.of_organisation(db, who.organisation_id):
        room_entries, rooms_problem = None, None
        if broker is not None and link.status is LinkStatus.ACTIVE:
            try:
                room_entries = rooms.room_directory(db, broker, deps.cipher(), link)
            except ServiceError as exc:
                rooms_problem = exc.message
        if room_entries is None:  # the directory cannot be read: linked rooms can still be unlinked
            room_entries = [
                rooms.RoomEntry(r.email, r.display_name, r, listed=False)
                for r in rooms.room_requests(db, link.id)
                if r.status is not MailboxStatus.UNLINKED
            ]
        page = mailboxes.mailbox_page(
            db, link.id, status=status, query=query, page=_page_of(link.id)
        )
        views.append(
            {
                "link": link,
                "counts": mailboxes.counts(db, link.id),
                "pace": _pace(link.id),
                "rooms": room_entries,
                "rooms_problem": rooms_problem,
                "page": page,
                "mailboxes": page.rows,
                "attention": mailboxes.needing_attention(db, page.rows),
            }
        )
    tenant = (request.args.get("tenant") or "").strip()[:200]
    configured_app_id = current_app.config.get("MICROSOFT_APP_ID") or ""
    app_id = configured_app_id or (request.args.get("app_id") or "").strip()[:64]
    consent_url = consent_problem = None
    if tenant:
        try:
            consent_url = domains.admin_consent_url(tenant, app_id)
        except Invalid as exc:
            consent_problem = exc.message
    return render_template(
        "settings/enterprise.html",
        domains=views,
        status=status,
        query=query,
        stuck_revocations=revocations.needing_attention(db, who.organisation_id),
        work_waiting=background.waiting(db, deps.jobs(), who.organisation_id),
        falling_behind=background.behind(deps.jobs()),
        revocation_kind=revocations.kind_of,
        tenant=tenant,
        app_id=app_id,
        app_id_configured=bool(configured_app_id),
        consent_url=consent_url,
        consent_problem=consent_problem,
        providers=domains.PROVIDERS,
        hints=mailboxes.ERROR_HINTS,
        configured=broker is not None,
        LinkStatus=LinkStatus,
        verifying=accounts.VERIFYING_PROVIDERS,
        MailboxStatus=MailboxStatus,
    )


@bp.route("/connect", methods=["POST"])
@allow(Role.ADMIN)
def start_connect():
    """Send the IT admin to the aggregator's Enterprise Connect authorization."""
    try:
        url = domains.begin(
            db_session(),
            deps.required_broker(),
            actor(),
            provider=request.form.get("provider", ""),
            session_nonce=oauth_session_nonce(),
            redirect_uri=external_url("enterprise.callback"),
        )
    except (Forbidden, Invalid) as exc:
        flash_error(exc)
        return redirect(url_for("enterprise.index"), code=303)
    return redirect(url, code=303)


@bp.route("/callback")
@allow(Role.ADMIN)
def callback():
    """Finish connecting the domain when the aggregator sends the admin back."""
    args = request.args
    try:
        link = domains.complete(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            actor(),
            state=args.get("state"),
            code=args.get("code"),
            error=args.get("error"),
            session_nonce=session.get("oauth_nonce"),
            redirect_uri=external_url("enterprise.callback"),
            jobs=deps.jobs(),
        )
    except StateRejected as exc:
        return render_template("calendar/state_rejected.html", message=exc.message), 400
    except Declined as exc:
        flash(exc.message, "info")
        return redirect(url_for("enterprise.index"))
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("enterprise.index"))
    flash(
        f"{link.domain} is connected through {link.account_email or 'its service account'}.",
        "success",
    )
    return redirect(url_for("enterprise.index"))


def _choose_page(link, *, problem: str | None = None, pasted: str = "", status: int = 200):
    query = (request.args.get("q") or "").strip()[:100] or None
    return render_template(
        "settings/enterprise_link.html",
        link=link,
        query=query,
        candidates=mailboxes.candidates(db_session(), link, query=query),
        MailboxStatus=MailboxStatus,
        problem=problem,
        pasted=pasted if len(pasted) <= KEEP_PASTED else "",
        max_addresses=address_list.MAX_ADDRESSES,
        max_mb=MAX_LIST_BYTES // (1024 * 1024),
    ), status


@bp.route("/<int:link_id>/link")
@allow(Role.ADMIN)
def choose(link_id: int):
    """Show the ways to choose mailboxes: all users, a searchable subset, or a list."""
    return _choose_page(_domain_or_404(link_id))


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc):
    """A list past the form's size limit: the form again, saying what the limit is (the body
    was not read, so nothing was checked or changed)."""
    link_id = (request.view_args or {}).get("link_id")
    if (
        request.endpoint != "enterprise.request_mailboxes"
        or not current_user.is_authenticated
        or current_user.role is not Role.ADMIN
    ):
        return render_error(413)
    return _choose_page(
        _domain_or_404(link_id),
        problem=f"The list is larger than {MAX_LIST_BYTES // (1024 * 1024)} MB; at most "
        f"{address_list.MAX_ADDRESSES:,} addresses can be linked at a time. Split it into "
        "smaller lists. Nothing was sent.",
        status=413,
    )


@bp.route("/<int:link_id>/link", methods=["POST"])
@body_limit(2 * MAX_LIST_BYTES + 64 * 1024)
@allow(Role.ADMIN)
def request_mailboxes(link_id: int):
    """Queue link requests for the chosen mailboxes and start sending them."""
    link = _domain_or_404(link_id)
    form = request.form
    mode = form.get("mode", "selected")
    emails: list[str] = []
    parsed = address_list.AddressList((), ())
    if mode == "selected":
        emails = form.getlist("emails")
    elif mode == "list":
        pasted = form.get("pasted", "")
        if len(pasted.encode()) > MAX_LIST_BYTES:
            raise RequestEntityTooLarge()
        text = pasted
        upload = request.files.get("csv")
        if upload and upload.filename:
            if pasted.strip():
                return _choose_page(
                    link,
                    problem="Paste a list or choose a file, not both. Nothing was sent.",
                    pasted=pasted,
                    status=400,
                )
            raw = upload.stream.read(MAX_LIST_BYTES + 1)
            if len(raw) > MAX_LIST_BYTES:
                raise RequestEntityTooLarge()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                return _choose_page(
                    link,
                    problem="The file is not UTF-8 text (save it as CSV UTF-8). Nothing was sent.",
                    pasted=pasted,
                    status=400,
                )
        try:
            parsed = address_list.parse(text)
        except Invalid as exc:
            return _choose_page(link, problem=exc.message, pasted=pasted, status=400)
    try:
        report = mailboxes.request_mailboxes(
            db_session(),
            actor(),
            link.id,
            emails=emails,
            addresses=parsed.addresses,
            refused=parsed.refused,
            all_users=mode == "all",
            callback_url=callbacks.service_account_callback_url,
            jobs=deps.jobs(),
            keep_summary=True,
        )
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("enterprise.choose", link_id=link.id), code=303)
    return redirect(url_for("enterprise.list_summary", list_id=report.summary_id), code=303)


@bp.route("/lists/<int:list_id>")
@allow(Role.ADMIN)
def list_summary(list_id: int):
    """What became of a list: queued, and the unused lines counted per reason."""
    try:
        found = list_summaries.summary(db_session(), actor(), list_id)
    except NotFound as exc:
        return render_error(404, exc.message)
    return render_template(
        "settings/enterprise_requested.html",
        summary=found,
        link=found.link,
        first_rows=list_summaries.FIRST_ROWS,
    )


@bp.route("/lists/<int:list_id>/unused.csv")
@allow(Role.ADMIN)
def list_unused(list_id: int):
    """Every unused line of a list with its reason, as CSV (line, entry, reason)."""
    try:
        lines = list_summaries.unused_lines(db_session(), actor(), list_id)
    except NotFound as exc:
        return render_error(404, exc.message)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "entry", "reason"])
    for line, entry, reason in lines:
        writer.writerow(["" if line is None else line, _csv_safe(entry), reason])
    return Response(
        "\ufeff" + out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="unused-lines-{list_id}.csv"',
            "Cache-Control": "no-store",
        },
    )


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@bp.route("/<int:link_id>/rooms", methods=["POST"])
@allow(Role.ADMIN)
def request_rooms(link_id: int):
    """Queue link requests for the chosen rooms (free/busy only) and start sending them."""
    link = _domain_or_404(link_id)
    try:
        report = rooms.request_rooms(
            db_session(),
            deps.required_broker(),
            deps.cipher(),
            actor(),
            link.id,
            request.form.getlist("rooms"),
            callback_url=callbacks.service_account_callback_url,
            jobs=deps.jobs(),
        )
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("enterprise.index"), code=303)
    for rejected in report.rejected:
        flash(f"{rejected.email}: {rejected.reason}.", "error")
    if report.queued:
        flash(
            f"Linking {report.queued} room{'' if report.queued == 1 else 's'}; the calendar "
            "service answers in a moment.",
            "success",
        )
    return redirect(url_for("enterprise.index") + f"#rooms-{link.id}", code=303)


def _pace(link_id: int) -> pace.Pace:
    """The expected time to finish the domain's waiting mailboxes at the current pace."""
    limiter = getattr(deps.broker(), "rate_limiter", None)
    caps = getattr(limiter, "caps", None)
    try:  # organisations asking for background budget now (a count; Redis may be away)
        asking = int(limiter.usage()["tenants"]) if hasattr(limiter, "usage") else 0
    except Exception:
        asking = 0
    per_minute = caps[BACKGROUND][1] if caps else None
    paced = getattr(limiter, "paced", None)  # a pace under 1 holds the lane below its minute
    if per_minute is not None and isinstance(paced, int):
        per_minute = min(per_minute, paced * 60)
    return pace.pace_of(
        db_session(),
        link_id,
        now=utcnow(),
        background_per_minute=per_minute,
        asking=asking,
    )


@bp.route("/<int:link_id>/progress")
@allow(Role.ADMIN)
def progress(link_id: int):
    """Counts of the domain's mailbox requests per status (polled by the page)."""
    link = _domain_or_404(link_id)
    db = db_session()
    counts: dict[str, object] = {**mailboxes.counts(db, link.id), "eta": _pace(link.id).text}
    if request.args.get("rows") != "1":
        return jsonify(counts)
    # The page's rows as they are now (same filter and page), for the table to replace its own.
    status = request.args.get("status") or None
    query = (request.args.get("q") or "").strip()[:100] or None
    raw = request.args.get("page", "")
    page = mailboxes.mailbox_page(
        db,
        link.id,
        status=status,
        query=query,
        page=int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1,
    )
    rows = render_template(
        "settings/_enterprise_mailbox_rows.html",
        link=link,
        d={"mailboxes": page.rows, "attention": mailboxes.needing_attention(db, page.rows)},
    )
    return jsonify({**counts, "rows": rows, "page": page.page, "pages": page.pages})


@bp.route("/<int:link_id>/retry", methods=["POST"])
@allow(Role.ADMIN)
def retry(link_id: int):
    """Send every failed mailbox request of the domain again."""
    link = _domain_or_404(link_id)
    try:
        count = mailboxes.retry_failed(db_session(), actor(), link.id, jobs=deps.jobs())
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("enterprise.index"), code=303)
    flash(
        f"Retrying {count} failed mailbox{'' if count == 1 else 'es'}."
        if count
        else "No failed mailboxes to retry.",
        "success",
    )
    return redirect(url_for("enterprise.index"), code=303)


@bp.route("/mailboxes/<int:request_id>/relink", methods=["POST"])
@allow(Role.ADMIN)
def relink(request_id: int):
    """Link a mailbox that needs attention again through the service account."""
    try:
        row = mailboxes.relink_mailbox(db_session(), actor(), request_id, jobs=deps.jobs())
    except NotFound:
        abort(404)
    except ServiceError as exc:
        flash_error(exc)
        return redirect(url_for("enterprise.index"), code=303)
    flash(
        f"{row.email} is being linked again; it is back once the calendar service answers.",
        "success",
    )
    return redirect(url_for("enterprise.index"), code=303)


@bp.route("/mailboxes/<int:request_id>/unlink")
@allow(Role.ADMIN)
def confirm_unlink(request_id: int):
    """Ask before unlinking a mailbox or room (or cancelling or removing its request), naming
    what will happen."""
    try:
        plan = teardown.unlink_plan(db_session(), actor(), request_id)
    except NotFound as exc:
        return render_error(404, exc.message)
    return render_template(
        "settings/enterprise_unlink.html", plan=plan, link=plan.row.service_account
    )


@bp.route("/mailboxes/<int:request_id>/unlink", methods=["POST"])
@allow(Role.ADMIN)
def unlink(request_id: int):
    """Unlink one mailbox: revoke it at the aggregator and delete its tokens (only from the
    confirmation page)."""
    if request.form.get("confirm") != "yes":
        try:  # another organisation's (or no) mailbox: 404, as for a confirmed one
            teardown.unlink_plan(db_session(), actor(), request_id)
        except NotFound:
            abort(404)
        return redirect(url_for("enterprise.confirm_unlink", request_id=request_id), code=303)
    try:
        row = teardown.unlink_mailbox(
            db_session(),
            deps.broker(),
            deps.cipher(),
            actor(),
            request_id,
            jobs=deps.jobs(),
        )
    except NotFound:
        abort(404)
    flash(f"{row.email} is unlinked; its tokens are deleted.", "success")
    return redirect(url_for("enterprise.index"), code=303)


@bp.route("/<int:link_id>/disconnect")
@allow(Role.ADMIN)
def confirm_disconnect(link_id: int):
    """Ask before disconnecting the domain, naming the mailboxes and rooms it affects."""
    link = _domain_or_404(link_id)
    try:
        plan = teardown.disconnect_plan(db_session(), actor(), link.id)
    except NotFound:
        return redirect(url_for("enterprise.index"), code=303)
    return render_template("settings/enterprise_disconnect.html", link=link, plan=plan)


@bp.route("/<int:link_id>/disconnect", methods=["POST"])
@allow(Role.ADMIN)
def disconnect(link_id: int):
    """Unlink every mailbox and room of the domain and its service account; revoke them at the
    aggregator in the background (only from the confirmation page)."""
    if request.form.get("confirm") != "yes":
        link = _domain_or_404(link_id)
        return redirect(url_for("enterprise.confirm_disconnect", link_id=link.id), code=303)
    try:
        report = teardown.disconnect_domain(
            db_session(), deps.cipher(), actor(), link_id, jobs=deps.jobs()
        )
    except NotFound:
        abort(404)
    flash(
        f"{report.domain} is disconnected: {report.mailboxes} mailbox"
        f"{'' if report.mailboxes == 1 else 'es'} and room(s) unlinked, {report.tokens_deleted} "
        f"set(s) of tokens deleted. Revoking {report.revocations} authorization(s) at the "
        "calendar service continues in the background.",
        "success",
    )
    return redirect(url_for("enterprise.index"), code=303)


@bp.route("/revocations/<int:revocation_id>/retry", methods=["POST"])
@allow(Role.ADMIN)
def retry_revocation(revocation_id: int):
    """Try again to revoke an authorization the calendar service refused."""
    try:
        revocations.try_again(db_session(), actor(), revocation_id, jobs=deps.jobs())
    except NotFound:
        abort(404)
    flash("Revoking it at the calendar service again.", "success")
    return redirect(url_for("enterprise.index"), code=303)


@bp.route("/revocations/<int:revocation_id>/resolved", methods=["POST"])
@allow(Role.ADMIN)
def resolved_revocation(revocation_id: int):
    """Record that an authorization was revoked at the calendar service by other means."""
    try:
        revocations.resolved_elsewhere(db_session(), actor(), revocation_id)
    except NotFound:
        abort(404)
    flash("Noted as revoked at the calendar service; Rendezvous forgot it.", "success")
    return redirect(url_for("enterprise.index"), code=303)


@bp.route("/reset")
@allow(Role.ADMIN)
def confirm_reset():
    """Ask before resetting Enterprise Connect."""
    db, who = db_session(), actor()
    links = domains.of_organisation(db, who.organisation_id)
    linked = sum(mailboxes.counts(db, link.id)["linked"] for link in links)
    return render_template("settings/enterprise_reset.html", links=links, linked=linked)


@bp.route("/reset", methods=["POST"])
@allow(Role.ADMIN)
def reset():
    """Disconnect every domain and forget the Enterprise Connect configuration."""
    if request.form.get("confirm") != "reset":
        flash("Type “reset” to confirm. Nothing was changed.", "error")
        return redirect(url_for("enterprise.confirm_reset"), code=303)
    report = teardown.reset(db_session(), deps.cipher(), actor(), jobs=deps.jobs())
    flash(
        f"Enterprise Connect reset: {report.domains} domain(s) disconnected, {report.mailboxes} "
        f"mailbox(es) and room(s) unlinked, {report.tokens_deleted} set(s) of tokens deleted; "
        "revoking them at the calendar service continues in the background.",
        "success",
    )
    return redirect(url_for("enterprise.index"), code=303)
