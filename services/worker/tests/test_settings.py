"""Options: validation, the environment, and one-line command-line errors."""

from __future__ import annotations

import pytest
from switchyard_worker import SettingsError, WorkerSettings, main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("SWITCHYARD_WORKER_"):
            monkeypatch.delenv(key)


def test_defaults_need_no_configuring():
    settings = WorkerSettings()
    assert settings.min_processes == 1
    assert settings.max_processes >= 2
    assert settings.queues == ()
    assert settings.health_port == 0
    assert settings.health_host == "127.0.0.1"


def test_queues_accept_a_comma_list_and_drop_duplicates():
    assert WorkerSettings(queues="fast, default,fast").queues == ("fast", "default")


def test_the_environment_sets_options_and_explicit_values_win(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_WORKER_MAX_PROCESSES", "6")
    monkeypatch.setenv("SWITCHYARD_WORKER_QUEUES", "a,b")
    monkeypatch.setenv("SWITCHYARD_WORKER_DEBUG", "true")
    monkeypatch.setenv("SWITCHYARD_WORKER_MAX_JOBS", "")  # empty means unset
    settings = WorkerSettings.load()
    assert settings.max_processes == 6
    assert settings.queues == ("a", "b")
    assert settings.debug is True
    assert settings.max_jobs is None
    assert WorkerSettings.load({"max_processes": 3}).max_processes == 3


def test_the_policy_follows_the_settings():
    policy = WorkerSettings(min_processes=2, max_processes=5, scale_backlog=7).policy()
    assert (policy.min_processes, policy.max_processes, policy.backlog_per_process) == (2, 5, 7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_processes": 0}, "greater than or equal to 1"),
        ({"min_processes": 4, "max_processes": 2}, "--max (2) is smaller than --min (4)"),
        ({"queues": "ok,no spaces"}, "bad queue name 'no spaces'"),
        ({"health_port": 70000}, "less than or equal to 65535"),
        ({"grace": -1}, "greater than or equal to 0"),
        ({"scale_interval": 0}, "scale_interval: Input should be greater than 0"),
        ({"max_jobs": "many"}, "max_jobs: Input should be a valid integer, got 'many'"),
        ({"metrics": "maybe"}, "metrics: Input should be true or false, got 'maybe'"),
        ({"job_log": "some"}, "job_log: Input should be 'all', 'failures' or 'off'"),
        ({"redis_url": "http://x"}, "redis_url: must be a redis://, rediss:// or unix:// URL"),
        ({"grace": float("nan")}, "grace: Input should be a finite number"),
        ({"min_processes": True}, "min_processes: Input should be a valid integer"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WorkerSettings(**kwargs)


def test_unknown_settings_are_refused():
    with pytest.raises(TypeError, match="bogus"):
        WorkerSettings(bogus=1)  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match="unknown setting 'bogus'"):
        WorkerSettings.load({"bogus": 1})


def test_strings_from_the_environment_are_converted(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_WORKER_METRICS", "off")
    monkeypatch.setenv("SWITCHYARD_WORKER_GRACE", "2.5")
    monkeypatch.setenv("SWITCHYARD_WORKER_MANIFEST", "build/manifest.json")
    monkeypatch.setenv("SWITCHYARD_WORKER_LOG_FORMAT", "json")
    settings = WorkerSettings.load()
    assert settings.metrics is False
    assert settings.grace == 2.5
    assert str(settings.manifest) == "build/manifest.json"
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--min", "0"],
            "switchyard-worker: error: --min: Input should be greater than or equal to 1",
        ),
        (
            ["--min", "3", "--max", "2"],
            "switchyard-worker: error: --max (2) is smaller than --min (3)",
        ),
        (["--queues", "a b"], "switchyard-worker: error: --queues: bad queue name 'a b'"),
        (["--max", "many"], "switchyard-worker: error: argument --max: invalid int value: 'many'"),
        (["--frobnicate"], "switchyard-worker: error: unrecognized arguments: --frobnicate"),
    ],
)
def test_command_line_errors_are_one_line_and_exit_2(argv, line, capsys):
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(line)
    assert "Traceback" not in err


def test_the_environment_is_checked_like_the_command_line(monkeypatch, capsys):
    monkeypatch.setenv("SWITCHYARD_WORKER_MIN_PROCESSES", "zero")
    assert main([]) == 2
    assert "--min: Input should be a valid integer" in capsys.readouterr().err


def test_a_misspelt_environment_variable_is_an_error_not_ignored(monkeypatch, capsys):
    monkeypatch.setenv("SWITCHYARD_WORKER_MAXPROCESSES", "8")
    with pytest.raises(SettingsError, match="did you mean SWITCHYARD_WORKER_MAX_PROCESSES"):
        WorkerSettings.load()
    assert main([]) == 2
    assert capsys.readouterr().err == (
        "switchyard-worker: error: unknown setting SWITCHYARD_WORKER_MAXPROCESSES "
        "(did you mean SWITCHYARD_WORKER_MAX_PROCESSES?)\n"
    )
