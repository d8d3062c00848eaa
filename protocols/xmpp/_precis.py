# Preparing the strings people type before they are compared, sans-IO:
# user names by RFC 8265's UsernameCaseMapped profile (PRECIS, RFC 8264),
# so that fullwidth `alice`, `Alice` and `alice`, or `rene` + COMBINING ACUTE and
# `ren\u00e9`, name one account; and passwords by SASLprep (RFC 4013), as
# SASL clients such as slixmpp prepare them before deriving SCRAM keys, so
# that the keys the server keeps are those of the password clients send.
#
# PRECIS's IdentifierClass is computed from Python's `unicodedata` (RFC 8264
# section 8, with the exceptions of RFC 5892 section 2.6). Its contextual
# characters (ZERO WIDTH JOINER and NON-JOINER, the Catalan middle dot, the
# Greek keraia, the Hebrew punctuation, the katakana middle dot) are refused
# rather than checked in context; Arabic-Indic digits are allowed unless
# the two kinds are mixed. SASLprep uses the `stringprep` module's tables
# (Unicode 3.2, as RFC 3454 requires).
from __future__ import annotations

import re
import stringprep
import unicodedata

__all__ = ["PrepError", "saslprep", "username"]

MAX_USERNAME_BYTES = 1023  # RFC 7622 3.3: a localpart is 1 to 1023 bytes
FORBIDDEN_IN_LOCALPART = set("\"&'/:<>@")  # RFC 7622 3.3.1, after PRECIS
# RFC 5892 2.6: exceptions to the general category rules
EXCEPTIONS_VALID = {0x00DF, 0x03C2, 0x06FD, 0x06FE, 0x0F0B, 0x3007}
EXCEPTIONS_DISALLOWED = {0x0640, 0x07FA, 0x302E, 0x302F, 0x303B, *range(0x3031, 0x3036)}
CONTEXTUAL = {0x00B7, 0x0375, 0x05F3, 0x05F4, 0x30FB, 0x200C, 0x200D}  # refused here
ARABIC_INDIC, EXTENDED_ARABIC_INDIC = range(0x0660, 0x066A), range(0x06F0, 0x06FA)
# Default_Ignorable_Code_Point characters whose general category would allow them
IGNORABLE = {
    0x034F,
    0x115F,
    0x1160,
    0x17B4,
    0x17B5,
    0x3164,
    0xFFA0,
    *range(0x180B, 0x1810),
    *range(0xFE00, 0xFE10),
    *range(0xE0100, 0xE01F0),
}
OLD_HANGUL_JAMO = (
    range(0x1100, 0x1200),
    range(0xA960, 0xA980),
    range(0xD7B0, 0xD800),
)
# A name already in its prepared form, in ASCII: printable, no capitals and
# none of FORBIDDEN_IN_LOCALPART (what JID parsing meets nearly every time)
PREPARED_ASCII = re.compile(
    "[{}]{{1,{}}}".format(
        re.escape(
            "".join(
                ch
                for ch in map(chr, range(0x21, 0x7F))
                if not ch.isupper() and ch not in FORBIDDEN_IN_LOCALPART
            )
        ),
        MAX_USERNAME_BYTES,
    )
)
LETTER_DIGITS = {"Ll", "Lu", "Lo", "Nd", "Lm", "Mn", "Mc"}
RTL = {"R", "AL", "AN"}


class PrepError(ValueError):
    """The string holds something the profile does not allow."""


def username(text: str) -> str:
    """`text` as RFC 8265's UsernameCaseMapped profile prepares it: fullwidth
    and halfwidth forms mapped to their usual ones, lower case, NFC; then
    PrepError unless every character is valid in an identifier (no spaces,
    controls, symbols, punctuation beyond ASCII, or unassigned code
    points), the Bidi Rule holds (RFC 5893), and it is a usable JID
    localpart (RFC 7622: 1 to 1023 bytes, none of " & ' / : < > @)."""
    if PREPARED_ASCII.fullmatch(text):  # the usual case: nothing to do
        return text
    if text.isascii():  # ASCII letters, digits, punctuation: ASCII letters, digits, punctuation
        prepared = text.lower()
        if not prepared or not all("!" <= ch <= "~" for ch in prepared):
            raise PrepError("only letters, digits and punctuation")
    else:
        widened = "".join(_width_mapped(ch) for ch in text)
        prepared = unicodedata.normalize("NFC", widened.lower())
        if not prepared:
            raise PrepError("the name is empty")
        for ch in prepared:
            if not _valid_in_identifier(ch):
                name = unicodedata.name(ch, "an unassigned code point")
                raise PrepError(f"U+{ord(ch):04X} ({name}) is not allowed")
        if any(ch in ARABIC_INDIC for ch in map(ord, prepared)) and any(
            ch in EXTENDED_ARABIC_INDIC for ch in map(ord, prepared)
        ):
            raise PrepError("two kinds of Arabic-Indic digits")
        _check_bidi(prepared)
    if len(prepared.encode()) > MAX_USERNAME_BYTES:
        raise PrepError(f"longer than {MAX_USERNAME_BYTES} bytes")
    if any(ch in FORBIDDEN_IN_LOCALPART for ch in prepared):
        raise PrepError("it has one of \" & ' / : < > @")
    return prepared


def _width_mapped(ch: str) -> str:
    """RFC 8264 9.1: a fullwidth or halfwidth character as its decomposition."""
    if unicodedata.decomposition(ch).startswith(("<wide>", "<narrow>")):
        return unicodedata.normalize("NFKC", ch)
    return ch


def _valid_in_identifier(ch: str) -> bool:
    """PVALID in PRECIS's IdentifierClass (RFC 8264 section 8; contextual
    characters refused)."""
    code = ord(ch)
    if code in EXCEPTIONS_VALID:
        return True
    if code in EXCEPTIONS_DISALLOWED or code in CONTEXTUAL or code in IGNORABLE:
        return False
    category = unicodedata.category(ch)
    if category == "Cn" or (code & 0xFFFE) == 0xFFFE or 0xFDD0 <= code <= 0xFDEF:
        return False  # unassigned, or a noncharacter
    if 0x21 <= code <= 0x7E:
        return True
    if any(code in block for block in OLD_HANGUL_JAMO):
        return False
    if unicodedata.normalize("NFKC", ch) != ch:  # HasCompat
        return False
    return category in LETTER_DIGITS


def _check_bidi(prepared: str) -> None:
    """RFC 5893's Bidi Rule, for a name with right-to-left characters: it
    starts with one, holds only what a right-to-left label may, and ends
    with a letter or digit (then marks), with one kind of digits."""
    classes = [unicodedata.bidirectional(ch) for ch in prepared]
    if not RTL.intersection(classes):
        return
    allowed = {"R", "AL", "AN", "EN", "ES", "CS", "ET", "ON", "BN", "NSM"}
    last = next((c for c in reversed(classes) if c != "NSM"), "")
    if (
        classes[0] not in ("R", "AL")
        or not allowed.issuperset(classes)
        or last not in ("R", "AL", "EN", "AN")
        or ("EN" in classes and "AN" in classes)
    ):
        raise PrepError("it mixes right-to-left and left-to-right text")


def saslprep(text: str, *, stored: bool = False) -> str:
    """`text` as SASLprep (RFC 4013) prepares a password: spaces of other
    kinds become SPACE, what is commonly mapped to nothing goes, NFKC;
    PrepError for prohibited characters (controls, private use,
    surrogates, non-characters...), text that breaks the bidi rules, and,
    for a string to be stored (`stored`), unassigned code points."""
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else "" if stringprep.in_table_b1(ch) else ch
        for ch in text
    )
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    for ch in prepared:
        if _prohibited(ch) or (stored and stringprep.in_table_a1(ch)):
            raise PrepError(f"U+{ord(ch):04X} is not allowed in a password")
    randal = [stringprep.in_table_d1(ch) for ch in prepared]
    if any(randal) and (
        any(stringprep.in_table_d2(ch) for ch in prepared) or not (randal[0] and randal[-1])
    ):
        raise PrepError("a password mixes right-to-left and left-to-right text")
    return prepared


def _prohibited(ch: str) -> bool:
    """RFC 4013 2.3: the tables of RFC 3454 that SASLprep prohibits."""
    return (
        stringprep.in_table_c12(ch)
        or stringprep.in_table_c21_c22(ch)
        or stringprep.in_table_c3(ch)
        or stringprep.in_table_c4(ch)
        or stringprep.in_table_c5(ch)
        or stringprep.in_table_c6(ch)
        or stringprep.in_table_c7(ch)
        or stringprep.in_table_c8(ch)
        or stringprep.in_table_c9(ch)
    )
