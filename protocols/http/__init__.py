# The HTTP plugin: HTTP/1.1 on h11, with native routes or any ASGI 3 app.
#
#   from protocols.http import HttpApp
#   app = HttpApp()
#
#   @app.route("/hello/{name}")
#   async def hello(request):
#       return f"hello, {request.path_params['name']}\n"
from ._app import HttpApp, Route
from ._asgi import AsgiApp
from ._messages import Headers, Request, Response
from ._plugin import HttpProtocol, protocol
from ._settings import HttpSettings

__all__ = [
    "AsgiApp",
    "Headers",
    "HttpApp",
    "HttpProtocol",
    "HttpSettings",
    "Request",
    "Response",
    "Route",
    "protocol",
]
