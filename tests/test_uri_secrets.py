"""Database URIs: passwords never shown, stored or logged; the database in the path honoured."""

from __future__ import annotations

import logging

import pytest

from ptdry import Module
from ptdry.cli.main import main
from ptdry.db.interface import DBInterface
from ptdry.db.repo import Repo
from ptdry.db.uri import mask_uri, scrub, uri_database
from ptdry.errors import ConfigError, ServerUnavailableError

SECRET = "s3cret"


@pytest.mark.parametrize(
    "uri, masked",
    [
        ("mongodb://alice:s3cret@h/", "mongodb://alice:***@h/"),
        ("  mongodb://alice:s3cret@h:27017/db  ", "mongodb://alice:***@h:27017/db"),
        ("MONGODB://alice:s3cret@h/", "mongodb://alice:***@h/"),
        ("MongoDB+SRV://alice:s3cret@cluster0.example.net/runs", "mongodb+srv://alice:***@cluster0.example.net/runs"),
        ("mongodb://alice:s3@cret@h/db", "mongodb://alice:***@h/db"),  # an unescaped @ in the password
        ("mongodb://alice:s3/cret@h/db", "mongodb://alice:***@h/db"),  # an unescaped / in the password
        ("mongodb://alice:s3cret@h/?appName=me@lab", "mongodb://alice:***@h/?appName=me@lab"),
        ("mongodb://h/?tls=true&tlsCertificateKeyFilePassword=s3cret", "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=***"),
        ("mongodb://h/db?ssl=true&sslPEMKeyPassword=s3cret;proxyPassword=s3cret", "mongodb://h/db?ssl=true&sslPEMKeyPassword=***;proxyPassword=***"),
        ("mongodb://h/?TLSCERTIFICATEKEYFILEPASSWORD=s3cret", "mongodb://h/?TLSCERTIFICATEKEYFILEPASSWORD=***"),
        (
            "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:s3cret",
            "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:***",
        ),
        ("mongodb://alice@h/", "mongodb://alice@h/"),
        ("mongodb://h:27017/", "mongodb://h:27017/"),
        (None, "<embedded default>"),
    ],
)
def test_mask_uri_hides_passwords_in_every_form(uri, masked):
    assert mask_uri(uri) == masked


def test_scrub_removes_every_secret_of_a_uri_from_a_message():
    uri = "mongodb://alice:s3%40cret@h/?tlsCertificateKeyFilePassword=k3y"
    assert scrub("login s3%40cret / s3@cret failed; key k3y", uri) == "login *** / *** failed; key ***"


def test_the_database_named_in_the_uri_path_is_used():
    assert DBInterface("mongodb://h/lab_runs?authSource=admin").database == "lab_runs"
    assert DBInterface("mongodb://h/?authSource=admin").database == "ptdry"
    assert DBInterface("mongodb://h/lab_runs", database="lab_runs").database == "lab_runs"
    assert uri_database("mongodb://alice:s3cret@h/my%2Druns") == "my-runs"
    with pytest.raises(ConfigError, match=r"database='other' and a URI naming database 'lab_runs' \(mongodb://alice:\*\*\*@h/lab_runs\)"):
        DBInterface("mongodb://alice:s3cret@h/lab_runs", database="other")


def test_a_password_split_by_an_unescaped_slash_is_not_taken_for_a_database_name():
    with pytest.raises(ConfigError, match=r"cannot be read: .* Escape '@', ':', '/' and '\?'") as info:
        DBInterface("mongodb://alice:pa/ss3cret@h")
    assert "ss3cret" not in str(info.value)


@pytest.mark.server
def test_writes_go_to_the_database_named_in_the_uri(server_uri, db_name):
    named = server_uri.replace("/?", f"/{db_name}?")
    db = DBInterface(named)
    try:
        Repo(db).add_object(Holder(1), name="in-path")
        assert db.client[db_name]["modules"].count_documents({"name": "in-path"}) == 1
        assert db.client["ptdry"]["modules"].count_documents({"name": "in-path"}) == 0
    finally:
        db.client.drop_database(db_name)


class Holder(Module):
    def __init__(self, db=None):
        self.db = db


def test_reprs_definitions_and_stored_documents_hold_no_password(db_name):
    uri = f"MONGODB://alice:{SECRET}@127.0.0.1:9/?tlsCertificateKeyFilePassword={SECRET}"
    db = DBInterface(uri, timeout=0.2)
    assert SECRET not in repr(db) and SECRET not in repr(db.definition())
    assert SECRET not in str(db.definition().to_dict()) and SECRET not in str(db.query_document())
    repo = Repo(f"mongomock://{db_name}")
    repo.add_object(Holder(db), name="holder")
    assert SECRET not in str(list(repo.modules.find()))


def test_a_session_given_a_uri_stores_it_masked():
    import numpy as np
    from _train_helpers import make_trainer

    from ptdry import DataProvider, Session

    data = DataProvider(train=(np.zeros((4, 64)), np.zeros(4, dtype=int)))
    session = Session(make_trainer(), data, db=f"mongodb://alice:{SECRET}@127.0.0.1:9/")
    assert SECRET not in str(session.definition().to_dict())
    assert session.definition().kwargs["db"] == "mongodb://alice:***@127.0.0.1:9/"
    assert session.db.uri == f"mongodb://alice:{SECRET}@127.0.0.1:9/"  # the live object can log in


@pytest.mark.parametrize(
    "uri",
    [
        f"mongodb://alice:{SECRET}@@127.0.0.1:9/",
        f"mongodb://alice:s3@cret@127.0.0.1:9/",
        f"postgres://alice:{SECRET}@127.0.0.1:9/",
        f"mongodb://alice:{SECRET}@127.0.0.1:9/?authMechanism=MONGODB-X509&tls=maybe",
    ],
)
def test_errors_about_a_uri_never_show_its_password(uri, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises((ConfigError, ServerUnavailableError)) as info:
        DBInterface(uri, timeout=0.2).client
    assert "alice" in str(info.value) and "***" in str(info.value)
    for text in (str(info.value), repr(info.value.__cause__), caplog.text):
        assert SECRET not in text and "cret" not in text


def test_the_cli_reports_an_unreachable_uri_in_one_line_without_the_password(capsys, monkeypatch):
    import ptdry.cli.runs

    monkeypatch.setattr(ptdry.cli.runs, "open_repo", lambda args: Repo(DBInterface(args.db, timeout=0.3)))  # fail fast
    code = main(["--db", f"mongodb://alice:{SECRET}@127.0.0.1:9/", "runs"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and SECRET not in err and "alice:***@127.0.0.1:9" in err


def test_a_successful_connection_logs_the_uri_masked(server_uri, caplog):
    caplog.set_level(logging.INFO, logger="ptdry.db.interface")
    uri = server_uri.replace("/?", f"/?appName=ptdry-test&authMechanismProperties=AWS_SESSION_TOKEN:{SECRET}&")
    DBInterface(uri).client
    assert "connected to" in caplog.text and SECRET not in caplog.text


def test_a_command_line_and_a_diff_are_stored_with_their_uris_masked(monkeypatch, db_name):
    import sys

    from ptdry.db.provenance import run_provenance
    from ptdry.db.uri import mask_uris_in

    monkeypatch.setattr(sys, "argv", ["train.py", "--db", f"mongodb://alice:{SECRET}@db.example:27017/runs"])
    stored = run_provenance()
    assert SECRET not in str(stored["command"]) and "alice:***@db.example" in str(stored["command"])
    diff = f"+DB = 'MONGODB+SRV://bob:{SECRET}@cluster.example/x?authSource=admin'\n"
    assert SECRET not in mask_uris_in(diff) and "bob:***@cluster.example" in mask_uris_in(diff)
