"""A site's logs in JSON: one parseable object per line, with the site and any exception."""

import io
import json
import logging

import pytest

from web.logs import JsonFormatter, formatter
from web.settings import load_settings


def logged_lines(log_format: str, emit) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format, 2))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    return stream.getvalue().splitlines()


def test_every_json_log_line_is_one_object_with_time_level_site_logger_and_message():
    lines = logged_lines("json", lambda log: (log.warning("site %d is slow", 1), log.info("ready")))
    entries = [json.loads(line) for line in lines]
    assert [e["message"] for e in entries] == ["site 1 is slow", "ready"]
    assert {tuple(sorted(e)) for e in entries} == {("level", "logger", "message", "site", "time")}
    assert entries[0]["level"] == "WARNING" and entries[0]["site"] == 2
    assert entries[0]["logger"] == "tests.logs" and entries[0]["time"].endswith("+00:00")


def test_an_exception_stays_inside_its_json_line():
    def emit(log):
        try:
            raise RuntimeError("store down\nsecond line")
        except RuntimeError:
            log.exception("save failed")

    (line,) = logged_lines("json", emit)
    entry = json.loads(line)
    assert entry["message"] == "save failed"
    assert "RuntimeError: store down" in entry["exception"]


def test_the_text_format_is_not_json():
    (line,) = logged_lines("text", lambda log: log.info("ready"))
    assert "site-2 INFO tests.logs: ready" in line
    assert not isinstance(formatter("text", 2), JsonFormatter)


def test_the_log_format_is_read_from_settings_and_a_wrong_one_is_refused(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[logging]\nformat = "json"\n')
    assert load_settings(path).log_format == "json"
    assert load_settings(path, log_format="text").log_format == "text"
    path.write_text('[logging]\nformat = "xml"\n')
    with pytest.raises(ValueError, match="logging.format"):
        load_settings(path)
