"""The optional bearer token: from the environment or a file, never the settings file; checked
on the page, the API, the events and the metrics; and no open bind without one."""

from __future__ import annotations

import pytest

from streams.errors import ConfigError
from streams.settings import Settings
from streams.web.api import TOKEN_COOKIE, check_exposure
from tests.unit.web.records import realtime

TOKEN = "s3cret-wallboard-token"


def test_token_from_environment_or_file_and_never_from_the_settings_file(tmp_path):
    assert Settings.from_mapping({}, env={"CALLSLO_WEB_TOKEN": TOKEN}).web.token.reveal() == TOKEN
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert Settings.from_mapping({"web": {"token_file": str(path)}}, env={}).web.token.reveal() == TOKEN
    with pytest.raises(ConfigError, match="web.token cannot be written"):
        Settings.from_mapping({"web": {"token": TOKEN}}, env={})
    with pytest.raises(ConfigError, match="web.token_file"):
        Settings.from_mapping({"web": {"token_file": str(tmp_path / "none")}}, env={})
    assert TOKEN not in repr(Settings.from_mapping({}, env={"CALLSLO_WEB_TOKEN": TOKEN}))


def test_open_bind_needs_a_token_or_allow_open():
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_exposure(Settings.from_mapping({"web": {"host": host}}, env={}).web)
    with pytest.raises(ConfigError, match="CALLSLO_WEB_TOKEN"):
        check_exposure(Settings.from_mapping({"web": {"host": "0.0.0.0"}}, env={}).web)
    check_exposure(Settings.from_mapping({"web": {"host": "0.0.0.0"}},
                                         env={"CALLSLO_WEB_TOKEN": TOKEN}).web)
    check_exposure(Settings.from_mapping({"web": {"host": "0.0.0.0"}},
                                         env={"CALLSLO_WEB_ALLOW_OPEN": "true"}).web)


def test_every_data_path_needs_the_token(serve, tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    served = serve(web={"token_file": str(path)})
    served.view.apply_realtime(realtime())
    for url in ("/", "/api/queues", "/api/queues/acme/support", "/api/events", "/metrics"):
        assert served.get(url)[0] == 401, url
        assert served.get(url, headers={"Authorization": "Bearer wrong"})[0] == 401, url
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert served.get("/api/queues", headers=good)[1]["queues"][0]["key"] == "acme/support"
    assert "callslo_queue_calls_waiting" in served.get("/metrics", headers=good)[1]
    # Static assets carry no figures.
    assert served.get("/static/wallboard.js")[0] == 200
    # The health check neither needs the token nor tells anything about the queues.
    status, body, _ = served.get("/healthz")
    assert (status, body) == (200, {"status": "ok"})


def test_page_token_becomes_a_cookie_that_the_api_accepts(serve, tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN)
    served = serve(web={"token_file": str(path)})
    assert served.get("/?token=wrong")[0] == 401
    status, _, response = served.get(f"/?token={TOKEN}")
    assert status == 302 and response.headers["Location"] == "/"
    cookie = response.cookies[TOKEN_COOKIE]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert served.get("/api/queues", cookies={TOKEN_COOKIE: TOKEN})[0] == 200
    assert served.get("/", cookies={TOKEN_COOKIE: TOKEN})[0] == 200
    assert served.get("/api/queues", cookies={TOKEN_COOKIE: "nope"})[0] == 401
