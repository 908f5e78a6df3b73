"""Shared fixtures: an isolated ``$PTDRY_HOME`` and a real SecantusDB server per test session.

Every test runs with ``$PTDRY_HOME`` pointing into the session's temporary directory, so
nothing touches the user's ``~/.ptdry``. The session's embedded server is started once (per
xdist worker) in that home — ``DBInterface()`` with no URI reuses it — and stopped at the end.
"""

from __future__ import annotations

import os
import uuid

import pytest

from ptdry.db.server import EmbeddedServer


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("ptdry-home")
    yield home
    EmbeddedServer(home).stop()  # whatever started it (a fixture, DBInterface()), no daemon outlives the tests


@pytest.fixture(autouse=True)
def _isolated_home(session_home, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PTDRY_HOME", str(session_home))
    monkeypatch.delenv("PTDRY_DB_URI", raising=False)


@pytest.fixture(scope="session")
def embedded_server(session_home):
    """The session's running SecantusDB server (an :class:`EmbeddedServer`)."""
    server = EmbeddedServer(session_home)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def server_uri(embedded_server) -> str:
    """A ``mongodb://`` URI of a real MongoDB-wire-protocol server."""
    return embedded_server.start()


@pytest.fixture
def db_name() -> str:
    """A fresh database name, so tests on the shared server never see each other's data."""
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["mongomock", "server"])
def any_db(request, db_name):
    """A DBInterface on mongomock, then on the real server (tests run once on each)."""
    from ptdry.db.interface import DBInterface

    if request.param == "mongomock":
        db = DBInterface(f"mongomock://{db_name}", database=db_name)
    else:
        db = DBInterface(request.getfixturevalue("server_uri"), database=db_name)
    yield db
    if request.param == "server":
        db.client.drop_database(db_name)
    db.close()


def pytest_report_header(config):
    return f"ptdry tests: PTDRY_HOME isolated per session; PTDRY_DB_URI={'set' if os.environ.get('PTDRY_DB_URI') else 'unset'}"
