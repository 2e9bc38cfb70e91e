"""The first page load after a restart: a fresh ``gunicorn -w 2 app:server`` hit at once by many threads loading the
index and every script it lists, each request over its own connection, must answer every request (plotly/dash#3971:
a worker asked for a script during its first request answered 500)."""

from __future__ import annotations

from benchmarks.deployment import RedisServer
from benchmarks.first_load import fresh_start, listed_scripts


def test_listed_scripts_reads_script_tags():
    html = '<script src="/_dash-component-suites/dash/a.js"></script>\n<script id="_dash-config" ' \
           'type="application/json">{}</script><script type="x" src="/b.js"></script>'  # fmt: skip
    assert listed_scripts(html) == ["/_dash-component-suites/dash/a.js", "/b.js"]


def test_a_fresh_gunicorn_serves_every_first_page_load(redis_server: RedisServer, tmp_path):
    probe = fresh_start(redis_server.url, tmp_path / "web", threads=16, rounds=4)
    assert probe.requests > 16 * 4 * 5, probe  # the index listed the page's scripts and every thread ran
    assert probe.failed == 0, (dict(probe.failures), probe.first_errors)
