"""Database URIs: normalize them, read the parts ptdry needs, and mask every secret in them.

:func:`mask_uri` is what every message, repr, log line and stored definition shows of a URI.
It errs on the side of hiding: the password ends at the *last* ``@`` that is followed by a
host list (so an unescaped ``@`` inside a password is hidden too), a URI that cannot be read
cleanly hides everything between ``://`` and its last ``@``, and every query option whose
name contains ``password``, ``secret`` or ``token`` (``tlsCertificateKeyFilePassword=…``, an
``AWS_SESSION_TOKEN:…`` property) is masked wherever it appears.

Example:
    >>> mask_uri(" MONGODB://alice:p@ss@db.lab:27017/runs?tlsCertificateKeyFilePassword=x ")
    'mongodb://alice:***@db.lab:27017/runs?tlsCertificateKeyFilePassword=***'
    >>> uri_database("mongodb://db.lab/runs?authSource=admin")
    'runs'
"""

from __future__ import annotations

import re
import urllib.parse

from ptdry.errors import ConfigError

__all__ = ["mask_uri", "normalize_uri", "scrub", "uri_database", "uri_hosts"]

MASK = "***"
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://", re.S)
_HOSTS = re.compile(r"[A-Za-z0-9._~%:,\[\]-]*")  # host[:port] lists, IPv6, %2F-encoded sockets
_BAD_DATABASE = re.compile(r'[/\\. "$*<>:|?@\x00]')  # MongoDB forbids all but "@" (a password split)
_SECRET_NAME = r"[^=&;?#\s]*(?:password|secret|token)[^=&;?#\s]*"
_SECRET_OPTION = re.compile(rf"(?i)(?P<name>{_SECRET_NAME})=(?P<value>[^&;#]*)")
_PROPERTIES = re.compile(r"(?i)(?P<name>authMechanismProperties)=(?P<value>[^&;#]*)")
_SECRET_PROPERTY = re.compile(r"(?i)(?P<name>[^,:]*(?:password|secret|token)[^,:]*):(?P<value>[^,]*)")


def normalize_uri(uri: str) -> str:
    """``uri`` without surrounding spaces and with a lower-case scheme (``MONGODB://`` works)."""
    text = uri.strip()
    m = _SCHEME.match(text)
    return text if m is None else m["scheme"].lower() + text[m.end("scheme") :]


def mask_uri(uri: str | None) -> str:
    """The URI with its password and secret options replaced by ``***`` (safe to show and store)."""
    if uri is None:
        return "<embedded default>"
    text = normalize_uri(uri)
    m = _SCHEME.match(text)
    head, rest = (text[: m.end()], text[m.end() :]) if m else ("", text)
    at = _userinfo_end(rest)
    if at is not None:
        user, colon, _ = rest[:at].partition(":")
        if colon:
            rest = f"{user}:{MASK}{rest[at:]}"
    return head + _mask_options(rest)


_ANY_URI = re.compile(r"mongodb(?:\+srv)?://[^\s'\"<>]+", re.IGNORECASE)


def mask_uris_in(text: str) -> str:
    """``text`` (a command line, a diff) with every MongoDB URI in it masked by :func:`mask_uri`:
    such text is stored with runs, and a ``--db mongodb://user:password@...`` must not be."""
    return _ANY_URI.sub(lambda m: mask_uri(m.group(0)), text)


def scrub(text: str, uri: str | None) -> str:
    """``text`` (e.g. a driver's error message) with every secret of ``uri`` replaced by ``***``."""
    if not uri:
        return text
    for secret in sorted(_secrets(normalize_uri(uri)), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _mask_options(text)


def uri_hosts(uri: str) -> str:
    """The host list of a URI (``"h1:27017,h2"``), without credentials, path or options."""
    return _split(uri)[0]


def uri_database(uri: str) -> str | None:
    """The database named in the URI's path (``mongodb://host/NAME``), or None.

    Raises:
        ConfigError: the path is not a database name MongoDB allows — typically a password
            holding an unescaped ``/`` (the message shows the URI masked).
    """
    name = urllib.parse.unquote(_split(uri)[1])
    if not name:
        return None
    if _BAD_DATABASE.search(name):
        raise ConfigError(
            f"the database URI {mask_uri(uri)!r} cannot be read: its path is not a database name. "
            "Escape '@', ':', '/' and '?' in the user name and password (urllib.parse.quote_plus)"
        )
    return name


# -- helpers ------------------------------------------------------------------------------------
def _after_scheme(text: str) -> str:
    m = _SCHEME.match(text)
    return text[m.end() :] if m else text


def _split(uri: str) -> tuple[str, str]:
    """``(hosts, database path)`` read as the driver reads a valid URI: the host part ends at
    the first ``/``, and credentials end at its last ``@``."""
    rest = _after_scheme(normalize_uri(uri))
    host_part, slash, path = rest.partition("/")
    if not slash:
        host_part = host_part.partition("?")[0]
    return host_part.rpartition("@")[2], path.partition("?")[0]


def _userinfo_end(rest: str) -> int | None:
    """Index of the ``@`` ending the credentials, or None. The last ``@`` followed by a host
    list whose credentials hold no ``/`` or ``?``; failing that, the last ``@`` followed by a
    host list (hides too much rather than too little); failing that, the last ``@``."""
    candidates = [i for i, ch in enumerate(rest) if ch == "@"]
    if not candidates:
        return None
    hosted = [i for i in candidates if _HOSTS.fullmatch(re.split(r"[/?]", rest[i + 1 :], maxsplit=1)[0])]
    clean = [i for i in hosted if not re.search(r"[/?]", rest[:i])]
    return (clean or hosted or candidates)[-1]


def _mask_options(text: str) -> str:
    text = _SECRET_OPTION.sub(lambda m: f"{m['name']}={MASK}", text)
    return _PROPERTIES.sub(lambda m: f"{m['name']}={_mask_properties(m['value'])}", text)


def _mask_properties(value: str) -> str:
    """``AWS_SESSION_TOKEN:abc,SERVICE_NAME:x`` → ``AWS_SESSION_TOKEN:***,SERVICE_NAME:x``
    (also when the value is percent-encoded: ``%3A`` for ``:``, ``%2C`` for ``,``)."""
    decoded = urllib.parse.unquote(value)
    masked = _SECRET_PROPERTY.sub(lambda m: f"{m['name']}:{MASK}", decoded)
    return value if masked == decoded else masked


def _secrets(text: str) -> set[str]:
    """Passwords and secret option values in ``text``, raw and percent-decoded."""
    found: set[str] = set()
    rest = _after_scheme(text)
    at = _userinfo_end(rest)
    if at is not None and ":" in rest[:at]:
        found.add(rest[:at].partition(":")[2])
    found.update(m["value"] for m in _SECRET_OPTION.finditer(text))
    for props in _PROPERTIES.finditer(text):
        found.update(m["value"] for m in _SECRET_PROPERTY.finditer(urllib.parse.unquote(props["value"])))
    found |= {urllib.parse.unquote(s) for s in found}
    return {s for s in found if s and s != MASK}
