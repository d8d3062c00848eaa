# The XMPP plugin's declaration.
from __future__ import annotations

from netsvc import AppError, ConnectionLimits, Protocol, Runtime, Service

from ._app import XmppApp
from ._settings import STARTTLS_CHOICES, XmppSettings

__all__ = ["XmppProtocol", "protocol"]


class XmppProtocol(Protocol[XmppApp, XmppSettings]):
    name = "xmpp"
    schemes = ("xmpp",)
    tls_schemes = ("xmpps",)
    default_port = 5222
    description = "XMPP subset (RFC 6120/6121): chat that netcat and real clients both speak"
    settings_class = XmppSettings
    limits = ConnectionLimits(idle_timeout=300, request_timeout=60, send_timeout=30)

    def default_app(self) -> XmppApp:
        return XmppApp()

    def check_app(self, app: object) -> XmppApp:
        if not isinstance(app, XmppApp):
            raise AppError(f"expected a protocols.xmpp.XmppApp, got {type(app).__name__}")
        return app

    def create_service(self, app: XmppApp, settings: XmppSettings, runtime: Runtime) -> Service:
        from ._accounts import AccountError
        from ._service import XmppService

        if (
            settings.users_file is None
            and settings.database is None
            and not settings.insecure_any_password
        ):
            raise AppError(
                "the XMPP plugin needs accounts: give --xmpp-database FILE (add users with "
                "`python -m protocols.xmpp adduser --database FILE NAME`), or an account file "
                "with --xmpp-users-file FILE (`python -m protocols.xmpp adduser FILE NAME`) or, "
                "for development only, --xmpp-insecure-any-password true"
            )
        if settings.allow_registration and settings.database is None:
            raise AppError(
                "--xmpp-allow-registration needs --xmpp-database FILE: the accounts clients "
                "register are kept there (an account file is written by adduser alone)"
            )
        if settings.allow_registration and settings.insecure_any_password:
            raise AppError(
                "--xmpp-allow-registration with --xmpp-insecure-any-password: every name "
                "logs in already, so no account can be registered; drop one of them"
            )
        if settings.registrations_per_hour < 0:
            raise AppError("--xmpp-registrations-per-hour must be 0 (no limit) or more")
        if settings.starttls not in STARTTLS_CHOICES:
            raise AppError(
                f"--xmpp-starttls {settings.starttls!r}: "
                f"choose one of {', '.join(STARTTLS_CHOICES)}"
            )
        try:
            return XmppService(app, settings, runtime)
        except AccountError as exc:
            raise AppError(str(exc)) from None


protocol = XmppProtocol()
