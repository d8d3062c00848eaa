# The HTTP plugin: HTTP/1.1 on h11 (or httptools, --http-parser), with native
# routes or any ASGI 3 app.
#
#   from protocols.http import HttpApp
#   app = HttpApp()
#
#   @app.route("/hello/{name}")
#   async def hello(request):
#       return f"hello, {request.path_params['name']}\n"
#
#   @app.websocket("/echo")
#   async def echo(ws):
#       await ws.accept()
#       async for message in ws:
#           await ws.send(message)
from ._app import HttpApp, Route, WebSocketRoute
from ._asgi import AsgiApp
from ._messages import Headers, Request, Response
from ._plugin import HttpProtocol, protocol
from ._settings import HttpSettings
from ._websocket import WebSocket, WebSocketDisconnect

__all__ = [
    "AsgiApp",
    "Headers",
    "HttpApp",
    "HttpProtocol",
    "HttpSettings",
    "Request",
    "Response",
    "Route",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketRoute",
    "protocol",
]
