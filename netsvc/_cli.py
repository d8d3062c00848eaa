# The command line: `netsvc serve` turns options, environment variables and
# plugin settings into a Server and runs it until SIGTERM/SIGINT (with the
# open file limit raised first, see _fdlimit);
# `netsvc protocols` lists the installed plugins, broken ones included;
# `netsvc --version` says which plugins' hot paths run compiled (setup.py),
# and `netsvc serve` warns when a compiled module is older than its source.
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import trio

from . import __version__
from ._address import AddressError, ListenAddress, parse_listen_url, systemd_activated
from ._build import compiled_modules, stale_compiled_modules
from ._connection import ConnectionLimits
from ._fdlimit import adjust_open_file_limit
from ._logging import LOG_FORMATS, LOG_LEVELS, configure_logging
from ._plugin import AppError, Protocol
from ._proxy import DEFAULT_TRUSTED_PROXIES, TrustedProxies
from ._registry import (
    InstalledPlugins,
    LoadError,
    import_object,
    load_protocol,
    plugin_folders,
    scan_protocols,
)
from ._server import Listen, Server
from ._settings import SettingError, SettingInfo, build_settings, describe_settings
from ._tls import TlsConfig, TlsError
from ._workers import run_workers

__all__ = ["main"]

log = logging.getLogger("netsvc")

SETTING_PREFIX = "setting__"
LIMIT_OPTIONS = ("max_connections", "idle_timeout", "request_timeout", "send_timeout")
EXIT_INTERRUPTED = 130
CORE_FOLDER = Path(__file__).resolve().parent
REBUILD_ADVICE = "rebuild with `pip install --no-deps -e .` (./dev does) or delete the .so files"
PARENT_CHECK_INTERVAL = 1.0  # seconds between a worker's checks that its supervisor lives


def _option_values(args: Sequence[str], name: str) -> list[str]:
    """The values of `--name X` / `--name=X` in raw argv (before click parses it)."""
    values = []
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith(name + "="):
            values.append(arg.partition("=")[2])
    return values


def _installed(ctx: click.Context) -> InstalledPlugins:
    """The installed plugins, loaded once per command (a broken one's import
    would run again at each scan)."""
    installed: InstalledPlugins | None = ctx.meta.get("netsvc.installed")
    if installed is None:
        installed = ctx.meta["netsvc.installed"] = scan_protocols()
    return installed


def _protocols_in(ctx: click.Context, args: Sequence[str]) -> dict[str, Protocol[Any, Any]]:
    """The plugins the command line names, by --protocol or --listen scheme."""
    found: dict[str, Protocol[Any, Any]] = {}
    try:
        names = _option_values(args, "--protocol") or [os.environ.get("NETSVC_PROTOCOL", "")]
        for name in filter(None, names):
            protocol = load_protocol(name)
            found[protocol.name] = protocol
        urls = _option_values(args, "--listen") or os.environ.get("NETSVC_LISTEN", "").split()
        for url in urls:
            scheme, _ = parse_listen_url(url)
            protocol, _ = _installed(ctx).for_scheme(scheme)
            found[protocol.name] = protocol
    except (LoadError, AddressError) as exc:
        raise click.UsageError(str(exc)) from None
    return found


def _setting_option(info: SettingInfo) -> click.Option:
    default = "none" if info.default is None else repr(info.default)
    if info.secret and info.default:
        default = "(hidden)"
    return click.Option(
        [info.option, f"{SETTING_PREFIX}{info.protocol}__{info.field}"],
        metavar=info.type.__name__.upper(),
        help=f"{info.help} [env {info.envvar}; default {default}]",
    )


class ServeCommand(click.Command):
    """`serve`, whose options include the settings of the protocols it names."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        protocols = _protocols_in(ctx, args)
        infos = [
            info for p in protocols.values() for info in describe_settings(p.name, p.settings_class)
        ]
        ctx.meta["netsvc.protocols"] = protocols
        ctx.meta["netsvc.settings"] = infos
        ctx.meta["netsvc.options"] = [_setting_option(info) for info in infos]
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        return params[:-1] + list(ctx.meta.get("netsvc.options", [])) + params[-1:]  # --help last


def _limits(protocol: Protocol[Any, Any], options: dict[str, Any]) -> ConnectionLimits:
    # a timeout of 0 (no limit, as on the command line) ConnectionLimits makes None
    changes = {name: options[name] for name in LIMIT_OPTIONS if options[name] is not None}
    try:
        return dataclasses.replace(protocol.limits, **changes)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


def _tls(options: dict[str, Any]) -> tuple[TlsConfig, ssl.SSLContext] | None:
    certfile = options["certfile"]
    if certfile is None:
        for needs_it in ("keyfile", "ca_certs"):
            if options[needs_it] is not None:
                raise click.UsageError(f"--{needs_it.replace('_', '-')} needs --certfile")
        if options["client_certs"] != "none":
            raise click.UsageError("--client-certs needs --certfile")
        return None
    try:
        config = TlsConfig(
            certfile,
            options["keyfile"],
            ca_certs=options["ca_certs"],
            client_certs=options["client_certs"],
        )
        return config, config.context()
    except TlsError as exc:
        raise click.UsageError(str(exc)) from None


def _reloader(tls: tuple[TlsConfig, ssl.SSLContext] | None) -> Callable[[Server], None]:
    """What SIGHUP does: a new TLS context from the files (certificate, key,
    CA bundle) for new handshakes, open connections keeping theirs; if the
    files cannot be loaded, the old context stays, untouched."""

    def reload(server: Server) -> None:
        if tls is None:
            log.info("SIGHUP: no TLS certificate to reload")
            return
        config = tls[0]
        try:
            server.replace_ssl_context(config.context())
        except TlsError as exc:
            log.error("SIGHUP: %s; still serving the previous certificate", exc)
            return
        log.info("SIGHUP: reloaded the TLS certificate from %s", config.certfile)

    return reload


def _simple_address(
    host: str | None,
    host_on_command_line: bool,
    port: int | None,
    unix: str | None,
    fd: int | None,
    has_listen: bool,
) -> ListenAddress | None:
    """The --protocol listener's address, from --host/--port/--unix/--fd/$PORT/systemd."""
    given = [name for name, value in (("--unix", unix), ("--fd", fd)) if value is not None]
    if port is not None or host_on_command_line:
        given.append("--host/--port")
    if len(given) > 1:
        raise click.UsageError(f"choose one of {' and '.join(given)}")
    if unix is not None:
        return ListenAddress("unix", path=unix)
    if fd is not None:
        return ListenAddress("fd", fd=fd)
    env_port = os.environ.get("PORT")
    if port is None and not host_on_command_line:
        if has_listen:
            if env_port:
                log.warning("$PORT=%s is not used: --listen gives the addresses", env_port)
            return None
        if systemd_activated(os.environ):
            return ListenAddress("systemd")
    if port is None and env_port:
        if not env_port.isdigit() or int(env_port) > 65535:
            raise click.UsageError(f"$PORT is {env_port!r}; expected a port number (0-65535)")
        port = int(env_port)
        host = host or "0.0.0.0"  # the PaaS convention: $PORT is reached from outside
    return ListenAddress("tcp", host=host or "127.0.0.1", port=port)


def _apps(values: Sequence[str], protocols: dict[str, Protocol[Any, Any]]) -> dict[str, object]:
    apps: dict[str, object] = {}
    for value in values:
        name, equals, path = value.partition("=")
        if not equals:
            if len(protocols) != 1:
                raise click.UsageError(
                    f"--app {value}: several protocols are served; "
                    "write --app PROTOCOL=package.module:attr"
                )
            name, path = next(iter(protocols)), value
        if name not in protocols:
            raise click.UsageError(f"--app {value}: protocol {name!r} is not being served")
        try:
            apps[name] = protocols[name].check_app(import_object(path))
        except (LoadError, AppError) as exc:
            raise click.UsageError(f"--app {path}: {exc}") from None
    return apps


def build_kind() -> str:
    """'compiled: core, http, resp, xmpp' (the core and the plugins with modules
    compiled by mypyc), or 'pure Python' (no C compiler at install time, or
    NETSVC_COMPILE=0);
    then, in a source checkout, the sources edited since they were compiled,
    whose edits do not run."""
    folders = {"core": CORE_FOLDER, **plugin_folders()}
    compiled = [name for name, folder in folders.items() if compiled_modules(folder)]
    kind = f"compiled: {', '.join(compiled)}" if compiled else "pure Python"
    stale = sorted({s for folder in folders.values() for s in stale_compiled_modules(folder)})
    if stale:
        kind += f"; stale: {_shown(stale[0])}"
        kind += f" and {len(stale) - 1} more" if len(stale) > 1 else ""
        kind += f" changed after being compiled, the old code runs; {REBUILD_ADVICE}"
    return kind


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _warn_of_stale_compiled_modules(protocol: Protocol[Any, Any]) -> None:
    """A warning per source of the core or of `protocol` edited since it was
    compiled: the server runs the compiled module, the code before the edit."""
    module = sys.modules.get(type(protocol).__module__)
    location = getattr(module, "__file__", None)
    package = getattr(getattr(module, "__spec__", None), "parent", "")
    # a plugin that is a single module has no package of its own to look in
    folders = [CORE_FOLDER] + ([Path(location).parent] if location and package else [])
    for folder in folders:
        for source in stale_compiled_modules(folder):
            log.warning(
                "%s changed after it was compiled: this server runs the compiled module, "
                "the code from before the change; %s",
                _shown(source),
                REBUILD_ADVICE,
            )


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"netsvc {__version__} ({build_kind()})")
        ctx.exit()


@click.group()
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_show_version,
    help="Show the version, compiled or pure Python, and exit.",
)
def main() -> None:
    """netsvc: export a service by binding a port."""


@main.command(cls=ServeCommand, context_settings={"show_default": True})
@click.option(
    "--protocol",
    envvar="NETSVC_PROTOCOL",
    metavar="NAME",
    help="Protocol plugin: an installed name (see `netsvc protocols`) or package.module:attr.",
)
@click.option(
    "--app",
    "apps",
    multiple=True,
    envvar="NETSVC_APP",
    metavar="[PROTOCOL=]MODULE:ATTR",
    help="Application with your handlers (default: the plugin's own).",
)
@click.option(
    "--host",
    envvar="NETSVC_HOST",
    help="Address to bind.  [default: 127.0.0.1, or 0.0.0.0 when $PORT is set]",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port to bind; 0 picks a free one.  [default: $PORT, else the protocol's port]",
)
@click.option("--unix", metavar="PATH", help="Listen on a Unix socket instead of TCP.")
@click.option(
    "--fd",
    type=click.IntRange(0),
    help="Serve an inherited listening socket by file descriptor number.",
)
@click.option(
    "--listen",
    "listen_urls",
    multiple=True,
    envvar="NETSVC_LISTEN",
    metavar="URL",
    help=(
        "Listen where a client would connect: redis://127.0.0.1:6380, http://[::1]:8080, "
        "redis+unix:///run/app.sock, redis+fd://3, redis+systemd://NAME. "
        "Repeatable; the scheme picks the protocol."
    ),
)
@click.option(
    "--proxy-protocol",
    is_flag=True,
    envvar="NETSVC_PROXY_PROTOCOL",
    help="The --protocol listener is behind a proxy that starts each connection with a "
    "PROXY protocol header (v1 or v2, HAProxy's send-proxy); in --listen, write +proxy: "
    "redis+proxy://0.0.0.0:6380.",
)
@click.option(
    "--forwarded-allow-ips",
    envvar="NETSVC_FORWARDED_ALLOW_IPS",
    default=DEFAULT_TRUSTED_PROXIES,
    show_default=True,
    metavar="ADDRESSES",
    help="Proxies trusted to name the real client (PROXY headers; HTTP's X-Forwarded-*): "
    "comma-separated addresses and networks (10.0.0.0/8), or * for any peer. "
    "Unix-socket peers are always trusted.",
)
@click.option(
    "--certfile",
    envvar="NETSVC_CERTFILE",
    type=click.Path(dir_okay=False),
    help="TLS certificate chain (PEM); turns TLS on for --port and TLS schemes.",
)
@click.option(
    "--keyfile",
    envvar="NETSVC_KEYFILE",
    type=click.Path(dir_okay=False),
    help="TLS private key (PEM), if not inside --certfile.",
)
@click.option(
    "--ca-certs",
    envvar="NETSVC_CA_CERTS",
    type=click.Path(dir_okay=False),
    help="CA certificates (PEM) that client certificates must chain to.",
)
@click.option(
    "--client-certs",
    envvar="NETSVC_CLIENT_CERTS",
    type=click.Choice(["none", "optional", "required"]),
    default="none",
    show_default=True,
    help="Ask TLS clients for a certificate (checked against --ca-certs): "
    "optional, or required (clients without one are refused).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1),
    envvar="NETSVC_MAX_CONNECTIONS",
    help="Open connections per listener; more are refused.  [default: the protocol's]",
)
@click.option(
    "--idle-timeout",
    type=click.FloatRange(0),
    envvar="NETSVC_IDLE_TIMEOUT",
    help="Seconds a connection may idle between requests; 0: no limit.  [default: the protocol's]",
)
@click.option(
    "--request-timeout",
    type=click.FloatRange(0),
    envvar="NETSVC_REQUEST_TIMEOUT",
    help="Seconds a started request may take to arrive; 0 for no limit.  [default: the protocol's]",
)
@click.option(
    "--send-timeout",
    type=click.FloatRange(0),
    envvar="NETSVC_SEND_TIMEOUT",
    help="Seconds a send may wait for an unread client; 0: no limit.  [default: the protocol's]",
)
@click.option(
    "--graceful-timeout",
    type=click.FloatRange(0),
    default=30.0,
    envvar="NETSVC_GRACEFUL_TIMEOUT",
    help="Seconds in-flight requests get to finish after SIGTERM/SIGINT.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
    envvar="NETSVC_WORKERS",
    help="Processes serving the same listeners (for protocols whose state is per request).",
)
@click.option(
    "--log-level", type=click.Choice(LOG_LEVELS), default="info", envvar="NETSVC_LOG_LEVEL"
)
@click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), default="text", envvar="NETSVC_LOG_FORMAT"
)
@click.pass_context
def serve(ctx: click.Context, /, **options: Any) -> None:
    """Serve protocols on ports until SIGTERM or SIGINT."""
    protocols: dict[str, Protocol[Any, Any]] = ctx.meta["netsvc.protocols"]
    configure_logging(options["log_level"], options["log_format"])
    installed: InstalledPlugins | None = ctx.meta.get("netsvc.installed")
    for plugin in installed.broken if installed else ():  # scanned to match a --listen scheme
        log.warning(
            "protocol plugin %s (%s) is skipped: %s",
            plugin.name,
            plugin.value,
            plugin.reason,
        )
    listens = _listens(ctx, options)
    settings = _settings(ctx.meta["netsvc.settings"], options, protocols)
    _warn_of_secrets_on_the_command_line(ctx.meta["netsvc.settings"], options)
    apps = _apps(options["apps"], protocols)
    tls = _tls(options)
    ssl_context = tls[1] if tls else None
    reload = _reloader(tls)
    workers: int = options["workers"]
    try:
        trusted_proxies = TrustedProxies.parse(options["forwarded_allow_ips"])
    except ValueError as exc:
        raise click.UsageError(f"--forwarded-allow-ips: {exc}") from None

    def make_server(listens: list[Listen]) -> Server:
        return Server(
            listens,
            apps=apps,
            settings=settings,
            ssl_context=ssl_context,
            graceful_timeout=options["graceful_timeout"],
            announce=workers == 1,
            trusted_proxies=trusted_proxies,
        )

    if workers > 1:
        for protocol in {listen.protocol.name: listen.protocol for listen in listens}.values():
            if not protocol.multiprocess_safe:
                raise click.UsageError(
                    f"--workers {workers}: protocol {protocol.name!r} keeps state that all its "
                    "connections share in one process, so it runs with --workers 1"
                )
    log.info("netsvc %s starting (pid %d)", __version__, os.getpid())
    for protocol in {listen.protocol.name: listen.protocol for listen in listens}.values():
        _warn_of_stale_compiled_modules(protocol)
    adjust_open_file_limit(listens, workers)  # before forking: the workers inherit it
    try:
        if workers > 1:

            def serve_in_worker(server: Server, ready: Callable[[], None], parent: int) -> int:
                return _serve_in_worker(server, ready, parent, reload)

            code = run_workers(make_server, serve_in_worker, listens, workers)
        else:
            code = trio.run(run_until_signalled, make_server(listens), reload)
    except BaseException as exc:
        error = startup_error(exc)
        if error is None:
            raise
        log.error("%s", error)
        sys.exit(1)
    sys.exit(code)


def _serve_in_worker(
    server: Server, ready: Callable[[], None], parent: int, reload: Callable[[Server], None]
) -> int:
    try:
        return trio.run(run_until_signalled, server, reload, ready, parent)
    except BaseException as exc:
        error = startup_error(exc)
        if error is None:
            raise
        log.error("%s", error)
        return 1


def _listens(ctx: click.Context, options: dict[str, Any]) -> list[Listen]:
    listens = []
    for url in options["listen_urls"]:
        scheme, address = parse_listen_url(url)
        protocol, tls = _installed(ctx).for_scheme(scheme)
        if tls and options["certfile"] is None:
            raise click.UsageError(f"--listen {url}: a TLS scheme needs --certfile (and --keyfile)")
        listens.append(Listen(protocol, address, tls=tls, limits=_limits(protocol, options)))
    if options["protocol"]:
        protocol = load_protocol(options["protocol"])
        simple = _simple_address(
            options["host"],
            ctx.get_parameter_source("host") == click.core.ParameterSource.COMMANDLINE,
            options["port"],
            options["unix"],
            options["fd"],
            bool(listens),
        )
        if simple is not None:
            if options["proxy_protocol"]:
                simple = dataclasses.replace(simple, proxy=True)
            tls = options["certfile"] is not None
            try:
                listen = Listen(protocol, simple, tls=tls, limits=_limits(protocol, options))
            except ValueError as exc:  # TLS for a protocol without a TLS scheme
                raise click.UsageError(str(exc)) from None
            listens.append(listen)
    elif options["proxy_protocol"]:
        raise click.UsageError("--proxy-protocol needs --protocol; in --listen, write +proxy")
    elif any(options[name] is not None for name in ("port", "unix", "fd")) or (
        ctx.get_parameter_source("host") == click.core.ParameterSource.COMMANDLINE
    ):
        raise click.UsageError("--host, --port, --unix and --fd need --protocol")
    if not listens:
        names = ", ".join(p.name for p in _installed(ctx).protocols) or "none installed"
        raise click.UsageError(
            f"nothing to serve: give --protocol NAME or --listen URL (protocols: {names})"
        )
    return listens


def _warn_of_secrets_on_the_command_line(infos: list[SettingInfo], options: dict[str, Any]) -> None:
    """A password given as an option is in the process list for every user of
    the machine to read: say so, and where it belongs."""
    for info in infos:
        if info.secret and options.get(f"{SETTING_PREFIX}{info.protocol}__{info.field}"):
            log.warning(
                "%s was given on the command line, which other users of this machine can read "
                "(ps, /proc): give it in the environment instead, as %s",
                info.option,
                info.envvar,
            )


def _settings(
    infos: list[SettingInfo], options: dict[str, Any], protocols: dict[str, Protocol[Any, Any]]
) -> dict[str, Any]:
    overrides: dict[str, dict[str, Any]] = {name: {} for name in protocols}
    for info in infos:
        text = options.get(f"{SETTING_PREFIX}{info.protocol}__{info.field}")
        if text is not None:
            try:
                overrides[info.protocol][info.field] = info.parse(text, source=info.option)
            except SettingError as exc:
                raise click.UsageError(str(exc)) from None
    try:
        return {
            name: build_settings(name, protocol.settings_class, overrides[name], os.environ)
            for name, protocol in protocols.items()
        }
    except SettingError as exc:
        raise click.UsageError(str(exc)) from None


async def run_until_signalled(
    server: Server,
    reload: Callable[[Server], None] = lambda server: None,
    ready: Callable[[], None] = lambda: None,
    parent: int | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (graceful) or a second SIGINT (at once);
    SIGHUP calls `reload` (the TLS certificate). `ready` is called once
    connections are accepted; with `parent` (a worker's supervisor) the
    server also shuts down if that process dies."""
    exit_code = 0
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
        await server.bind()
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                nonlocal exit_code
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if signum == signal.SIGHUP:
                        reload(server)
                    elif not server.accepting:  # still starting up: nothing to finish
                        log.info("%s while starting: stopping", name)
                        nursery.cancel_scope.cancel()
                    elif not server.shutting_down:
                        log.info("%s: shutting down gracefully (SIGINT again stops at once)", name)
                        server.shutdown()
                    elif signum == signal.SIGINT:
                        log.warning("%s again: stopping now", name)
                        exit_code = EXIT_INTERRUPTED
                        nursery.cancel_scope.cancel()

            async def watch_parent(pid: int) -> None:
                while os.getppid() == pid:  # noqa: ASYNC110 - no event tells of a death
                    await trio.sleep(PARENT_CHECK_INTERVAL)
                log.warning("the supervisor (pid %d) is gone: shutting down", pid)
                server.shutdown()

            async def serve(*, task_status: trio.TaskStatus[list[str]]) -> None:
                await server.serve(task_status=task_status)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_signals)
            if parent is not None:
                nursery.start_soon(watch_parent, parent)
            await nursery.start(serve)
            ready()
    return exit_code


def startup_error(exc: BaseException) -> Exception | None:
    """The AddressError/AppError/SettingError inside `exc` (trio wraps errors
    raised in nurseries in exception groups), or None."""
    if isinstance(exc, (AddressError, AppError, SettingError)):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := startup_error(inner)) is not None:
                return found
    return None


@main.command(name="protocols")
def list_protocols() -> None:
    """List the installed protocol plugins.

    A plugin that fails to load (its import raises, or its entry point is not
    a netsvc.Protocol) is listed as BROKEN with the reason and named in a
    warning on stderr; the others work as usual, and the exit status is 0.
    """
    installed = scan_protocols()
    found: list[tuple[str, str, str, str]] = [
        (p.name, ",".join((*p.schemes, *p.tls_schemes)), str(p.default_port), p.description)
        for p in installed.protocols
    ]
    found += [(b.name, "-", "-", f"BROKEN: {b.reason}") for b in installed.broken]
    rows = [("NAME", "SCHEMES", "PORT", "DESCRIPTION"), *sorted(found)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[3]
        )
    if installed.broken:
        count = len(installed.broken)
        click.echo(
            f"warning: {count} installed protocol plugin{'s' if count > 1 else ''} failed to "
            f"load (listed as BROKEN): {', '.join(b.name for b in installed.broken)}",
            err=True,
        )
