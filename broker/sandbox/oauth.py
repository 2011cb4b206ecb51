"""OAuth endpoints: token, revoke, and the consent pages a person clicks through (§1, §2, §14 B)."""

from __future__ import annotations

from flask import Blueprint, jsonify, make_response, redirect, render_template, request

from . import authz, errors, web
from .authz import AuthorizeRequest, ConsentError

bp = Blueprint("sandbox_oauth", __name__, template_folder="templates")

PROVIDERS = [
    ("google", "Google"),
    ("office365", "Microsoft 365"),
    ("live_connect", "Outlook.com"),
    ("exchange", "Exchange"),
    ("apple", "iCloud"),
]
ENTERPRISE_PROVIDERS = [
    ("google", "Google Workspace"),
    ("office365", "Microsoft 365"),
    ("exchange", "Exchange (on-premises)"),
]
LINK_COOKIE = "sandbox_linked_account"


# ---- token endpoints -----------------------------------------------------------------------------


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/oauth/token")
def token():
    """Exchange a code or a refresh token for tokens (the Authorization header is ignored, §0.4)."""
    data = web.body(token_endpoint=True)
    state = web.state()
    authz.check_client(state, data.get("client_id"), data.get("client_secret"))
    grant_type = data.get("grant_type")
    if grant_type == "authorization_code":
        if not data.get("code"):
            raise errors.token_error("invalid_request", 400, "code is required")
        result = authz.exchange_code(
            state, data["client_id"], data["code"], data.get("redirect_uri") or ""
        )
    elif grant_type == "refresh_token":
        if not data.get("refresh_token"):
            raise errors.token_error("invalid_request", 400, "refresh_token is required")
        result = authz.refresh(state, data["client_id"], data["refresh_token"])
    else:
        raise errors.token_error("unsupported_grant_type")
    return _no_store(jsonify(result))


@bp.post("/oauth/token/revoke")
def revoke():
    """Revoke an authorization by token or sub; always 200 for well-formed requests (§1.4)."""
    data = web.body(token_endpoint=True)
    state = web.state()
    authz.check_client(state, data.get("client_id"), data.get("client_secret"))
    if not data.get("token") and not data.get("sub"):
        raise errors.token_error("invalid_request", 400, "token or sub is required")
    authz.revoke(state, data["client_id"], data.get("token"), data.get("sub"))
    return _no_store(make_response("", 200))


# ---- consent pages -------------------------------------------------------------------------------


def _render(
    req: AuthorizeRequest,
    *,
    provider: str = "",
    error: str = "",
    email: str = "",
    status: int = 200,
):
    state = web.state()
    providers = ENTERPRISE_PROVIDERS if req.enterprise else PROVIDERS
    with state.lock:
        world = state.world
        identities = []
        for ident in sorted(world.identities.values(), key=lambda i: (i.domain, i.name)):
            domain = world.domains[ident.domain]
            if domain.provider_name != provider:
                continue
            if req.enterprise and ident.admin_of != ident.domain:
                continue
            if not req.enterprise and ident.kind in {"room", "service_account"}:
                continue
            identities.append(
                {
                    "email": ident.email,
                    "name": ident.name,
                    "service": domain.provider_service,
                    "password": ident.password,
                }
            )
        ews_hint = next((d.ews_url for d in world.domains.values() if d.ews_url), "")
    action = "/enterprise_connect/oauth/authorize" if req.enterprise else "/oauth/authorize"
    return render_template(
        "sandbox/consent.html",
        req=req,
        params=req.as_params(),
        providers=providers,
        provider=provider,
        provider_label=dict(providers).get(provider, provider),
        identities=identities,
        error=error,
        email=email,
        action=action,
        ews_hint=ews_hint,
        scopes=req.scope.split(),
        delegated_scopes=req.delegated_scope.split(),
    ), status


def _authorize_page(enterprise: bool):
    req = AuthorizeRequest.from_params(request.args, enterprise=enterprise)
    state = web.state()
    try:
        early = authz.check_authorize_request(state, req)
    except ConsentError as exc:
        return render_template(
            "sandbox/message.html", title="Cannot authorize", message=str(exc)
        ), 400
    if early:
        return redirect(early)
    provider = req.provider or request.args.get("sandbox_provider", "")
    valid = dict(ENTERPRISE_PROVIDERS if enterprise else PROVIDERS)
    return _render(req, provider=provider if provider in valid else "")


def _authorize_decision(enterprise: bool):
    form = request.form
    req = AuthorizeRequest.from_params(form, enterprise=enterprise)
    chosen = form.get("sandbox_provider", "")
    approve = form.get("decision") == "approve"
    email = (form.get("email") or "").strip()
    try:
        if approve and chosen and not req.provider_name:
            req.provider_name = chosen  # the person's choice on the first step
        target, sub = authz.decide(
            web.state(),
            req,
            approve=approve,
            email=email,
            password=form.get("password", ""),
            server_url=form.get("server_url", ""),
            linked_account_id=request.cookies.get(LINK_COOKIE),
        )
    except ConsentError as exc:
        try:
            authz.check_authorize_request(web.state(), req)
        except ConsentError:
            return render_template(
                "sandbox/message.html", title="Cannot authorize", message=str(exc)
            ), 400
        return _render(
            req, provider=chosen or req.provider, error=str(exc), email=email, status=400
        )
    response = redirect(target)
    if sub and sub.startswith("acc_") and not req.avoid_linking:
        response.set_cookie(LINK_COOKIE, sub, httponly=True, samesite="Lax")
    return response


@bp.get("/oauth/authorize")
def authorize():
    """Show the consent page for Individual Connect."""
    return _authorize_page(False)


@bp.post("/oauth/authorize")
def authorize_decision():
    """Approve or deny Individual Connect and redirect back to the app."""
    return _authorize_decision(False)


@bp.get("/enterprise_connect/oauth/authorize")
def enterprise_authorize():
    """Show the consent page for an administrator's Enterprise Connect."""
    return _authorize_page(True)


@bp.post("/enterprise_connect/oauth/authorize")
def enterprise_decision():
    """Approve or deny Enterprise Connect and redirect back to the app."""
    return _authorize_decision(True)
