"""Single sign-on through the organisation's OpenID Connect identity provider.

oidc.py      the provider: discovery, the authorization request (PKCE, state, nonce),
             redeeming the code and validating the ID token (Authlib, joserfc)
settings.py  the IT admin's configuration, password login and its break-glass admin
login.py     signing a person in: which organisation, one-time states, which account
"""
