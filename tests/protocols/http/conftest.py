# Every HTTP test runs with both parsers, h11 and httptools (--http-parser):
# `auto` is made to pick the one of the run, in this process (servers from
# netsvc.testing) and in `netsvc` subprocesses (tests.serveprocess), unless
# a test chooses one itself. Session-scoped, so that the tests run in two
# groups and a server a module shares is started again for the second.
from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from protocols.http import _parse
from tests import serveprocess

PARSERS = ["h11", "httptools"]


@pytest.fixture(scope="session", params=PARSERS, autouse=True)
def http_parser(request: pytest.FixtureRequest) -> Iterator[str]:
    """The parser every HTTP server of the test uses (unless it says)."""
    parser: str = request.param
    netsvc_env = serveprocess.netsvc_env

    def env_with_parser(extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = netsvc_env(extra)
        env.setdefault("NETSVC_HTTP_PARSER", parser)
        return env

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_parse, "AUTO", (parser,))
        patch.setattr(serveprocess, "netsvc_env", env_with_parser)
        yield parser
