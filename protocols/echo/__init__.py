# The echo protocol (RFC 862 over TCP): every byte received is sent back.
# It is the smallest complete plugin, handy to check that a port is reachable.
from ._plugin import EchoProtocol, EchoService, EchoSettings, protocol

__all__ = ["EchoProtocol", "EchoService", "EchoSettings", "protocol"]
