# The HTTP plugin's declaration. Default port 8080: the conventional
# unprivileged HTTP port (5000, the twelve-factor text's example, is taken
# by AirPlay on macOS and by many dev servers).
from __future__ import annotations

from netsvc import AppError, ConnectionLimits, Protocol, Runtime, Service

from ._app import HttpApp
from ._asgi import AsgiApp, is_asgi_app
from ._default import default_app
from ._settings import HttpSettings

__all__ = ["HttpProtocol", "protocol"]


class HttpProtocol(Protocol[HttpApp | AsgiApp, HttpSettings]):
    name = "http"
    schemes = ("http",)
    tls_schemes = ("https",)
    default_port = 8080
    description = "HTTP/1.1 (h11, or httptools): native routes or any ASGI 3 app"
    settings_class = HttpSettings
    multiprocess_safe = True
    # keep-alive connections idle for 5s are closed, as most servers do
    limits = ConnectionLimits(idle_timeout=5, request_timeout=10, send_timeout=30)

    def default_app(self) -> HttpApp:
        return default_app()

    def check_app(self, app: object) -> HttpApp | AsgiApp:
        if isinstance(app, (HttpApp, AsgiApp)):
            return app
        if is_asgi_app(app):
            return AsgiApp(app)  # type: ignore[arg-type]
        raise AppError(
            f"expected a protocols.http.HttpApp or an ASGI 3 application "
            f"(async def app(scope, receive, send)), got {type(app).__name__}"
        )

    def create_service(
        self, app: HttpApp | AsgiApp, settings: HttpSettings, runtime: Runtime
    ) -> Service:
        from ._service import HttpService

        return HttpService(app, settings, runtime)


protocol = HttpProtocol()
