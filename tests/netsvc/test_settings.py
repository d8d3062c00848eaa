# Plugin settings: declared as a dataclass, described for the CLI, parsed
# from text with precise errors, and layered defaults < environment < options.
from __future__ import annotations

import dataclasses

import pytest

from netsvc import SettingError, setting
from netsvc._settings import build_settings, describe_settings


@dataclasses.dataclass(frozen=True)
class Example:
    max_body_size: int = setting(1024, help="largest body")
    ratio: float = setting(0.5, help="a ratio")
    verbose: bool = setting(False, help="talk more")
    password: str | None = setting(None, help="a secret", secret=True)


def test_describe() -> None:
    infos = {info.field: info for info in describe_settings("http", Example)}
    size = infos["max_body_size"]
    assert (size.name, size.option, size.envvar) == (
        "max-body-size",
        "--http-max-body-size",
        "NETSVC_HTTP_MAX_BODY_SIZE",
    )
    assert (size.type, size.default, size.help) == (int, 1024, "largest body")
    assert infos["password"].optional and infos["password"].secret


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("max_body_size", " 42 ", 42),
        ("ratio", "2.5", 2.5),
        ("verbose", "yes", True),
        ("verbose", "OFF", False),
        ("verbose", "1", True),
        ("password", "", None),
        ("password", " spaced ", " spaced "),
    ],
)
def test_parse(field: str, text: str, value: object) -> None:
    (info,) = [i for i in describe_settings("http", Example) if i.field == field]
    assert info.parse(text, source="X") == value


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("max_body_size", "1k", "SRC: expected an integer, got '1k'"),
        ("ratio", "half", "SRC: expected a number, got 'half'"),
        ("verbose", "maybe", "SRC: expected true or false, got 'maybe'"),
    ],
)
def test_parse_errors(field: str, text: str, message: str) -> None:
    (info,) = [i for i in describe_settings("http", Example) if i.field == field]
    with pytest.raises(SettingError) as caught:
        info.parse(text, source="SRC")
    assert str(caught.value) == message


def test_layers_defaults_environment_overrides() -> None:
    env = {"NETSVC_HTTP_MAX_BODY_SIZE": "10", "NETSVC_HTTP_RATIO": "0.1"}
    built = build_settings("http", Example, {"ratio": 0.9}, env)
    assert built == Example(max_body_size=10, ratio=0.9, verbose=False, password=None)


def test_unknown_override_names_the_known_ones() -> None:
    with pytest.raises(SettingError, match=r"has no setting 'colour'.*max_body_size"):
        build_settings("http", Example, {"colour": "red"}, {})


def test_settings_need_supported_types_and_defaults() -> None:
    @dataclasses.dataclass
    class BadType:
        items: list[str] = setting((), help="")

    @dataclasses.dataclass
    class NoDefault:
        size: int

    with pytest.raises(TypeError, match="settings may be str, int, float or bool"):
        describe_settings("x", BadType)
    with pytest.raises(TypeError, match="needs a default"):
        describe_settings("x", NoDefault)
