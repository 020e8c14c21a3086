"""Resolved secret values never reach a report, a log file or the terminal; a test can still read them raw."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_docs import page, section

from conftest import service
from pytest_ecstask.lifecycle import LABEL_SESSION
from pytest_ecstask.options import MASK
from pytest_ecstask.secretvalues import MIN_MASKED_LENGTH, SecretMask

SSM_VALUE = "ssm-secret-value"
JSON_KEY_VALUE = "json-key-secret-value"
LOG_OPTION_VALUE = "log-option-secret-value"
SHORT_VALUE = "abc"  # under the minimum length: left alone
VALUES = (SSM_VALUE, JSON_KEY_VALUE, LOG_OPTION_VALUE)
SECRETS_MANAGER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop-db-AbCdEf"
SECRETS = {
    "/shop/db-password": SSM_VALUE,
    "/shop/pin": SHORT_VALUE,
    "/shop/log-token": LOG_OPTION_VALUE,
    SECRETS_MANAGER_ARN: json.dumps({"username": "svc", "password": JSON_KEY_VALUE}),
}
# The app logs its configuration: each value on stdout and on stderr, in the middle of a line and alone.
LEAKY_SCRIPT = (
    'echo "connecting with password=$DB_PASSWORD to db"; echo "$DB_PASSWORD"; '
    'echo "user password=$DB_USER_PASSWORD rejected" >&2; echo "$DB_USER_PASSWORD" >&2; '
    f'echo "log token {LOG_OPTION_VALUE} in use"; echo "pin=$PIN"; echo app-ready'
)
SECRET_ENTRIES = [
    {"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/shop/db-password"},
    {"name": "DB_USER_PASSWORD", "valueFrom": f"{SECRETS_MANAGER_ARN}:password::"},
    {"name": "PIN", "valueFrom": "/shop/pin"},
]
LOG_CONFIGURATION = {
    "logDriver": "awslogs",
    "options": {"awslogs-group": "/shop", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "shop"},
    "secretOptions": [{"name": "token", "valueFrom": "/shop/log-token"}],
}


def leaky(image: str) -> dict[str, Any]:
    return {
        "family": "leaky",
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                "command": service(LEAKY_SCRIPT),
                "secrets": SECRET_ENTRIES,
                "logConfiguration": LOG_CONFIGURATION,
            }
        ],
    }


def broken(image: str) -> dict[str, Any]:
    """A task that fails to start: its init container logs the secrets and exits 1, quoted in the reason."""
    return {
        "family": "broken",
        "containerDefinitions": [
            {
                "name": "init",
                "image": image,
                "essential": False,
                "command": ["sh", "-c", f"{LEAKY_SCRIPT}; exit 1"],
                "secrets": SECRET_ENTRIES,
                "logConfiguration": LOG_CONFIGURATION,
            },
            {
                "name": "app",
                "image": image,
                "command": service(),
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
            },
        ],
    }


@pytest.fixture
def project(pytester: pytest.Pytester, image: str) -> pytest.Pytester:
    pytester.makefile(
        ".json", leaky=json.dumps(leaky(image)), broken=json.dumps(broken(image)), secrets=json.dumps(SECRETS)
    )
    pytester.makeini(
        "[pytest]\necs_pull = never\necs_stop_timeout = 2\naddopts = -p no:benchmark -p no:randomly\n"
        "ecs_secrets_file = secrets.json\n"
    )
    return pytester


def assert_masked(text: str, where: str) -> None:
    for value in VALUES:
        assert value not in text, f"{value!r} shows in {where}"
    assert MASK in text, f"no {MASK} in {where}"


def leftovers(docker_api: Any, output: str) -> list[Any]:
    session = next(line.split()[2].rstrip(",") for line in output.splitlines() if line.startswith("ecstask: session"))
    filters = {"label": f"{LABEL_SESSION}={session}"}
    return list(docker_api.containers(all=True, filters=filters)) + list(
        docker_api.networks(filters=filters)  # volumes: none in these task definitions
    )


# -- the mask itself (pure) ----------------------------------------------------------------------------------


def test_every_value_is_masked_wherever_it_occurs_longest_first() -> None:
    mask = SecretMask(["s3cret", "s3cret-and-more", "multi\nline-value"])
    text = "a=s3cret-and-more b=s3cret\ns3cret\nmulti\nline-value\n"
    assert mask(text) == f"a={MASK} b={MASK}\n{MASK}\n{MASK}\n"
    # A multi-line value's lines are masked one by one too: logs are shown line by line.
    assert mask("line-value") == MASK and mask("xmultix") == f"x{MASK}x"


def test_values_shorter_than_the_minimum_are_not_masked() -> None:
    short = "x" * (MIN_MASKED_LENGTH - 1)
    mask = SecretMask([short, "1", "", "   \n  ", "y" * MIN_MASKED_LENGTH])
    assert mask(f"{short} 1 true {'y' * MIN_MASKED_LENGTH}") == f"{short} 1 true {MASK}"
    assert not SecretMask(["1", "on"]) and mask
    assert mask("") == ""
    assert "y" * MIN_MASKED_LENGTH not in repr(mask)


def test_the_docs_give_the_minimum_length_and_why() -> None:
    docs = section(page("secrets-and-variables.md"), "## Secret values in output")
    assert f"{MIN_MASKED_LENGTH} characters" in docs and "garble" in docs
    assert "--ecs-show-secrets" in docs and "raw=True" in docs


# -- end to end ----------------------------------------------------------------------------------------------


def test_failure_report_junit_and_log_dir_mask_every_value(project: pytest.Pytester, docker_api: Any) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("leaky.json")
        def test_fails(ecs_task):
            ecs_task.wait_for_log("app", "app-ready")
            # One line, picked by its text: stdout and stderr lines can interleave in any order.
            raw = ecs_task.logs("app", raw=True).splitlines()
            print("captured:", next(line for line in raw if line.startswith("connecting")))
            # The test's own assertion quotes the raw logs: the report still shows no value.
            assert False, ecs_task.logs(raw=True)
        """)
    result = project.runpytest("--junitxml=report.xml", "--ecs-log-dir=logs", "-rA")
    result.assert_outcomes(failed=1)
    terminal = result.stdout.str() + result.stderr.str()
    assert_masked(terminal, "the terminal")
    # In the logs section of the failure: on stdout and stderr, in the middle of a line and as a whole line.
    for line in (
        f"*out connecting with password={MASK} to db",
        f"*out {MASK}",
        f"*err user password={MASK} rejected",
        f"*err {MASK}",
        f"*out log token {MASK} in use",
        f"*out pin={SHORT_VALUE}",  # under the minimum length: shown
    ):  # one at a time: stdout and stderr lines interleave as their timestamps fall
        result.stdout.fnmatch_lines(["logs of app:", line])
    assert f"captured: connecting with password={MASK}" in terminal  # captured output is masked too
    assert_masked((project.path / "report.xml").read_text(), "the JUnit XML")
    log_file = next((project.path / "logs").glob("leaky-1-*/app.log")).read_text()
    assert_masked(log_file, "the --ecs-log-dir file")
    for line in (f"stdout connecting with password={MASK} to db", f"stdout {MASK}", f"stderr {MASK}"):
        assert f" {line}\n" in log_file
    assert not leftovers(docker_api, result.stdout.str())


def test_logs_always_masks_a_passing_test_report(project: pytest.Pytester, docker_api: Any) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("leaky.json")
        def test_passes(ecs_task):
            ecs_task.wait_for_log("app", "app-ready")
        """)
    result = project.runpytest("--ecs-logs=always", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*ecs task leaky:1*", "logs of app:", f"*out connecting with password={MASK} to db"])
    assert_masked(result.stdout.str(), "the --ecs-logs=always section")
    assert not leftovers(docker_api, result.stdout.str())


def test_verbose_lines_error_report_and_hook_payloads_mask_values_quoted_in_reasons(
    project: pytest.Pytester, docker_api: Any
) -> None:
    project.makeconftest("""
        import json

        def pytest_ecstask_task_event(task, event, container, at, details):
            if event == "task_stopped":
                with open("events.json", "a") as f:
                    f.write(json.dumps(details) + "\\n")
        """)
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("broken.json")
        def test_never_runs(ecs_task):
            pass
        """)
    result = project.runpytest_subprocess("-v", "--junitxml=report.xml")  # real output capture
    result.assert_outcomes(errors=1)
    live, report = result.stdout.str().split(" ERRORS ")
    # The init container's last log lines are quoted in the reason the live lines show.
    assert "its last log lines:" in live
    assert_masked(live, "the -v live lines")
    assert "its last log lines:" in report
    assert_masked(report, "the error report")
    assert_masked((project.path / "report.xml").read_text(), "the JUnit XML of a start failure")
    assert_masked((project.path / "events.json").read_text(), "the task_stopped hook payload")
    assert not leftovers(docker_api, result.stdout.str())


def test_show_secrets_turns_masking_off_and_the_header_says_so(project: pytest.Pytester, docker_api: Any) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("leaky.json")
        def test_fails(ecs_task):
            ecs_task.wait_for_log("app", "app-ready")
            assert False
        """)
    result = project.runpytest("--ecs-show-secrets")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["ecstask: session *SECRET VALUES SHOWN UNMASKED (--ecs-show-secrets)*"])
    result.stdout.fnmatch_lines([f"*out connecting with password={SSM_VALUE} to db"])
    result.stdout.fnmatch_lines([f"*err {JSON_KEY_VALUE}"])
    assert "SHOWN UNMASKED" not in project.runpytest("--co").stdout.str()
    assert not leftovers(docker_api, result.stdout.str())


def test_the_test_reads_raw_logs_only_when_it_asks(run: Any, image: str) -> None:
    secrets = {
        "/shop/db-password": SSM_VALUE,
        "/shop/pin": SHORT_VALUE,
        "/shop/log-token": LOG_OPTION_VALUE,
        SECRETS_MANAGER_ARN: json.dumps({"password": JSON_KEY_VALUE}),
    }
    task = run(leaky(image), secrets=secrets, endpoints=False)
    app = task.containers["app"]
    # "connecting" is on stdout, "rejected" on stderr: the two streams can arrive in either order.
    line = app.wait_for_log("connecting with password=", timeout=30)
    assert line == f"connecting with password={MASK} to db"
    assert app.wait_for_log("connecting with password=", raw=True) == f"connecting with password={SSM_VALUE} to db"
    app.wait_for_log("app-ready")
    for text in (app.logs(raw=True), task.logs(raw=True), task.logs("app", raw=True)):
        assert all(value in text for value in VALUES)
    assert any(line.text == JSON_KEY_VALUE and line.stream == "stderr" for line in app.log_lines(raw=True))
    for text in (app.logs(), task.logs(), "\n".join(line.text for line in app.log_lines())):
        assert_masked(text, "the logs a test reads without raw=True")
    assert all(MASK in text for text in task.awslogs.values())
    task.close()
    assert SSM_VALUE in app.logs(raw=True) and SSM_VALUE not in app.logs()  # the logs kept at removal too
