"""Bad and hostile input: only the plugin's own errors, naming the file and the problem, never a secret.

The property tests run mutated copies of real task definitions (shared/taskdefs) through load and plan, and
random secret values through every error path that reads a secrets file, a vars file or --ecs-var. The
command-line tests check each class of bad input the way a user meets it: exit 4, a message naming the file
and the problem, no traceback. None of them needs Docker, except the failing run at the end.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import string
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_ecstask.errors import MAX_PROBLEMS_SHOWN, EcsTaskError
from pytest_ecstask.lifecycle import Owner
from pytest_ecstask.plan import PlanOptions, build_plan, format_plan, plan_data
from pytest_ecstask.secretvalues import load_secrets_file
from pytest_ecstask.taskdef import MAX_FILE_BYTES, parse_task_definition, parse_task_definition_text
from pytest_ecstask.variables import load_vars_file, parse_var_assignments

TASKDEFS = Path(__file__).resolve().parents[1].parent / "shared" / "taskdefs"
FILES = sorted(TASKDEFS.glob("*.json"))
USAGE_ERROR = 4

OPTIONS = PlanOptions(
    task_id="e" * 32,
    owner=Owner("s", "h/1", "/tmp/s.lease"),
    created="2026-01-01T00:00:00Z",
    pause_image="pause",
    mask_secrets=True,  # as --ecs-plan plans: secrets and environment files need no values
)

# Names the model knows, so that mutations reach the rules behind the type checks, not only "unknown key".
MODEL_KEYS = [
    *("family", "networkMode", "containerDefinitions", "volumes", "pidMode", "ipcMode", "cpu", "memory"),
    *("name", "image", "essential", "dependsOn", "containerName", "condition", "links", "volumesFrom"),
    *("sourceContainer", "mountPoints", "sourceVolume", "containerPath", "portMappings", "containerPort"),
    *("hostPort", "containerPortRange", "protocol", "healthCheck", "command", "interval", "retries"),
    *("startTimeout", "stopTimeout", "secrets", "valueFrom", "environment", "value", "environmentFiles"),
    *("linuxParameters", "tmpfs", "size", "devices", "hostPath", "host", "sourcePath", "dockerLabels"),
    *("dockerVolumeConfiguration", "scope", "restartPolicy", "enabled", "ulimits", "softLimit", "hardLimit"),
]

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["\udc80", "a\ud800b", "${x}", "{{ x }}", "$X", "8000-7000", "80-", "START", "SUCCESS", ""]),
    st.sampled_from(["bridge", "awsvpc", "host", "none", "task", "shared", "app", "CMD-SHELL"]),
)
JSON = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(MODEL_KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


# Deeper than any task definition, yet shallow enough for the test itself to copy.
VALUES = JSON | st.integers(min_value=30, max_value=250).map(_nested)


def _nodes(data: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every value in the data, found without recursion."""
    found: list[tuple[Any, Any]] = []
    stack = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            found.append((node, key))
            stack.append(value)
    return found


def _mutate(data: Any, draw: Callable[[Any], Any]) -> Any:
    """One to three random edits: replace a value, delete it, add a member, or copy a container."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        nodes = _nodes(data)
        if not nodes:
            return draw(VALUES)
        parent, key = nodes[draw(st.integers(min_value=0, max_value=len(nodes) - 1))]
        action = draw(st.sampled_from(["replace", "delete", "add", "duplicate"]))
        if action == "replace":
            parent[key] = draw(VALUES)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(MODEL_KEYS))] = draw(VALUES)
        elif action == "add" and isinstance(parent[key], list):
            parent[key].append(draw(VALUES))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    return data


def _load_and_plan(load: Callable[[], Any]) -> None:
    """Load and plan; the plugin's own errors are the only acceptable failure."""
    try:
        plan = build_plan(load(), OPTIONS)
        text = format_plan(plan_data(plan))
        text.encode("utf-8")  # what --ecs-plan prints must be printable
    except EcsTaskError as exc:
        str(exc).encode("utf-8")  # and so must every message


def _parsed(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None  # a template: the text mutations below cover it


PARSED = [p for p in FILES if _parsed(p) is not None]


@pytest.mark.skipif(not FILES, reason="shared/taskdefs is absent")
@pytest.mark.parametrize("path", PARSED, ids=lambda p: p.name)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_mutated_real_task_definitions_give_only_our_errors(path: Path, data: st.DataObject) -> None:
    mutated = _mutate(_parsed(path), data.draw)
    _load_and_plan(lambda: parse_task_definition(mutated, path.name))


@pytest.mark.skipif(not FILES, reason="shared/taskdefs is absent")
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_mutated_real_task_definition_text_gives_only_our_errors(path: Path, data: st.DataObject) -> None:
    text = path.read_text(encoding="utf-8")
    at = data.draw(st.integers(min_value=0, max_value=len(text)))
    edit = data.draw(
        st.sampled_from(["truncate", "insert", "digits", "nest"]),
    )
    if edit == "truncate":
        text = text[:at]
    elif edit == "insert":
        text = text[:at] + data.draw(st.text(max_size=8) | st.sampled_from(["\\udc80", '"', "{", "]", ":"])) + text[at:]
    elif edit == "digits":
        text = text[:at] + "9" * data.draw(st.integers(min_value=1, max_value=6000)) + text[at:]
    else:
        depth = data.draw(st.integers(min_value=1, max_value=5000))
        text = text[:at] + "[" * depth + "]" * depth + text[at:]
    _load_and_plan(lambda: parse_task_definition_text(text, path.name))


# --- secret values never appear in a message ----------------------------------------------------------------

# The prefix keeps a drawn value from being a word the output holds anyway ("us-east-1", "AWS_REGION").
SECRET_VALUES = st.text(alphabet=string.ascii_letters + string.digits + "-_./+", min_size=4, max_size=40).map(
    lambda text: "s3cr3t" + text
)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A new empty folder per example (hypothesis runs many examples in one test: tmp_path is one folder)."""
    with tempfile.TemporaryDirectory(prefix="pytest-ecstask-bad-input-") as folder:
        yield Path(folder)


def _message(call: Callable[[], Any]) -> str:
    with pytest.raises(EcsTaskError) as caught:
        call()
    return str(caught.value)


# Lines that each make a file fail to load, with the secret somewhere in the failing line.
YAML_BREAKERS = [
    "DB_PASSWORD: !{v}",
    "DB_PASSWORD: *{v}",
    "DB_PASSWORD: @{v}",
    "DB_PASSWORD: `{v}",
    "DB_PASSWORD: %{v}",
    "DB_PASSWORD: '{v}",
    'DB_PASSWORD: "{v}',
    "DB_PASSWORD: {v}\n  - {v}",
    "- {v}\nDB_PASSWORD: {v}",
    "DB_PASSWORD: [{v}",
    "DB_PASSWORD: [{v}, 2]",
    "{v}: 1",  # a name that is not a string, or not a variable name, is told by position
    "DB_PASSWORD:\t{v}",
    "? [{v}]\n: x",
]
JSON_BREAKERS = ['{{"DB_PASSWORD": {v}}}', '{{"DB_PASSWORD": "{v}}}', '{{"DB_PASSWORD": "{v}", }}', '["{v}"]', "{v}"]
DOTENV_BREAKERS = ["DB_PASSWORD:{v}", "DB PASSWORD={v}", "{v}", "export DB_PASSWORD {v}", "1{v}={v}"]


@settings(max_examples=30, deadline=None)
@given(value=SECRET_VALUES, breaker=st.sampled_from(YAML_BREAKERS), kind=st.sampled_from(["secrets", "vars"]))
def test_secret_values_never_appear_in_yaml_file_errors(value: str, breaker: str, kind: str) -> None:
    with _scratch() as folder:
        path = folder / f"{kind}.yaml"
        path.write_text(breaker.format(v=value) + "\n", encoding="utf-8")
        try:
            (load_secrets_file if kind == "secrets" else load_vars_file)(path)
        except EcsTaskError as exc:  # some breakers still make a valid file, of a wrong shape or not
            assert value not in str(exc)
            assert str(path) in str(exc)


@settings(max_examples=30, deadline=None)
@given(value=SECRET_VALUES, breaker=st.sampled_from(JSON_BREAKERS), kind=st.sampled_from(["secrets", "vars"]))
def test_secret_values_never_appear_in_json_file_errors(value: str, breaker: str, kind: str) -> None:
    with _scratch() as folder:
        path = folder / f"{kind}.json"
        path.write_text(breaker.format(v=value), encoding="utf-8")
        message = _message(lambda: (load_secrets_file if kind == "secrets" else load_vars_file)(path))
    assert value not in message and str(path) in message


@settings(max_examples=30, deadline=None)
@given(value=SECRET_VALUES, breaker=st.sampled_from(DOTENV_BREAKERS))
def test_secret_values_never_appear_in_dotenv_vars_file_errors(value: str, breaker: str) -> None:
    with _scratch() as folder:
        path = folder / "vars.env"
        path.write_text(f"OK=1\n{breaker.format(v=value)}\n", encoding="utf-8")
        message = _message(lambda: load_vars_file(path))
    assert value not in message and "line 2" in message


@settings(max_examples=50, deadline=None)
@given(value=SECRET_VALUES, breaker=st.sampled_from(["DB_PASSWORD:{v}", "DB PASSWORD={v}", "{v}", "-{v}={v}", "{v}"]))
def test_secret_values_never_appear_in_ecs_var_errors(value: str, breaker: str) -> None:
    message = _message(lambda: parse_var_assignments(["OK=1", breaker.format(v=value)], "--ecs-var"))
    assert value not in message
    assert message.startswith("--ecs-var: entry 2 of 2")


@settings(max_examples=50, deadline=None)
@given(value=SECRET_VALUES, name=st.sampled_from(["DB_PASSWORD", "A=B", "TOKEN==", "X"]))
def test_secret_values_never_appear_in_the_plan_text_or_json(value: str, name: str) -> None:
    """A plan made to run holds the values; what --ecs-plan shows of it never does, whatever the name."""
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/db"
    taskdef = parse_task_definition(
        {
            "family": "shop",
            "containerDefinitions": [{"name": "app", "image": "app:1", "secrets": [{"name": name, "valueFrom": arn}]}],
        },
        "taskdef.json",
    )
    plan = build_plan(taskdef, dataclasses.replace(OPTIONS, mask_secrets=False, secret_values={arn: value}))
    assert f"{name}={value}" in plan.containers[0].create_body["Env"]
    data = plan_data(plan, {"app": [name]})
    shown = json.dumps(data) + format_plan(data)
    assert value not in shown
    assert data["containers"][0]["environment"][name] == "******"


# --- each class of bad input, through the command line ------------------------------------------------------


@pytest.fixture
def plan_of(pytester: pytest.Pytester) -> Callable[..., pytest.RunResult]:
    def plan(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ecs-plan", *args)

    return plan


def _taskdef(containers: list[dict[str, Any]]) -> str:
    return json.dumps({"family": "shop", "containerDefinitions": containers})


def _chain(length: int) -> str:
    return _taskdef(
        [
            {
                "name": f"c{i}",
                "image": "app:1",
                "essential": i == 0,
                "dependsOn": [{"containerName": f"c{i + 1}", "condition": "START"}] if i + 1 < length else [],
            }
            for i in range(length)
        ]
    )


CLASSES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # name: (writes the files and gives the extra arguments, words the message must hold)
    "deeply nested JSON": (
        lambda d: [_write(d / "t.json", "[" * 100_000 + "]" * 100_000)],
        "nested too deeply to read",
    ),
    "nested deeper than a task definition": (
        lambda d: [_write(d / "t.json", json.dumps({"family": "x", "tags": _nested(200)}))],
        "nested more than 32 levels deep",
    ),
    "a number with thousands of digits": (
        lambda d: [_write(d / "t.json", '{"family": "x", "cpu": 1' + "0" * 5000 + "}")],
        "line 1: a number with 5001 digits",
    ),
    "a lone surrogate": (
        lambda d: [_write(d / "t.json", '{"containerDefinitions": [{"name": "a", "image": "b\\udc80"}]}')],
        "$.containerDefinitions[0].image (container 'a'): the value is not valid Unicode",
    ),
    "not UTF-8, with templating": (
        lambda d: [_write(d / "t.json", b'{"family": "\xe9${X}"}'), "--ecs-var=X=1"],
        "line 1: not UTF-8 text",
    ),
    "an empty file": (lambda d: [_write(d / "t.json", "  \n")], "the file is empty"),
    "a YAML task definition": (
        lambda d: [_write(d / "t.yaml", "family: shop\ncontainerDefinitions: []\n")],
        "task definitions are JSON",
    ),
    "a malformed containerPortRange": (
        lambda d: [
            _write(
                d / "t.json",
                _taskdef([{"name": "a", "image": "b", "portMappings": [{"containerPortRange": "9000-80"}]}]),
            )
        ],
        "$.containerDefinitions[0].portMappings[0].containerPortRange (container 'a'): '9000-80' is malformed",
    ),
    "a huge file": (
        lambda d: [_write(d / "t.json", " " * (MAX_FILE_BYTES + 1) + "{}")],
        "the file is 1.0 MiB; ECS takes task definitions up to 64 KiB",
    ),
}


def _write(path: Path, content: str | bytes) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return f"--ecs-taskdef={path.name}"


@pytest.mark.parametrize("case", list(CLASSES))
def test_each_class_of_bad_input_is_a_plain_error_naming_the_file(
    case: str, pytester: pytest.Pytester, plan_of: Callable[..., pytest.RunResult]
) -> None:
    write, words = CLASSES[case]
    args = write(pytester.path)
    result = plan_of(*args)
    err = result.stderr.str()
    assert result.ret == USAGE_ERROR, err
    assert "Traceback" not in err + result.stdout.str()
    taskdef = args[0].split("=", 1)[1]
    assert f"ERROR: {pytester.path / taskdef}: " in err
    assert words in err


def test_a_long_dependency_chain_plans_and_a_long_cycle_is_named(
    pytester: pytest.Pytester, plan_of: Callable[..., pytest.RunResult]
) -> None:
    (pytester.path / "chain.json").write_text(_chain(10))  # as many containers as ECS takes
    result = plan_of("--ecs-taskdef=chain.json")
    assert result.ret == 0, result.stderr.str()
    assert "stop order: c0 -> c1 -> c2" in result.stdout.str()
    # Thousands of containers: refused for their number, and still walked without recursion.
    cycle = json.loads(_chain(3000))
    cycle["containerDefinitions"][-1]["dependsOn"] = [{"containerName": "c0", "condition": "START"}]
    (pytester.path / "cycle.json").write_text(json.dumps(cycle))
    result = plan_of("--ecs-taskdef=cycle.json")
    assert result.ret == USAGE_ERROR and "Traceback" not in result.stderr.str()
    assert "dependency cycle c0 -> c1 -> c2 -> " in result.stderr.str()
    assert "3000 container definitions: ECS takes at most 10" in result.stderr.str()


def test_a_thousand_problems_are_capped_in_one_message(
    pytester: pytest.Pytester, plan_of: Callable[..., pytest.RunResult]
) -> None:
    (pytester.path / "t.json").write_text(_taskdef([{"name": f"c{i}", "image": 7} for i in range(1000)]))
    result = plan_of("--ecs-taskdef=t.json")
    err = result.stderr.str()
    assert result.ret == USAGE_ERROR
    assert "t.json: 1001 problems:" in err  # each image, and the number of containers
    assert f"  ... and {1001 - MAX_PROBLEMS_SHOWN} more" in err
    assert err.count("expected a string, got 7") == MAX_PROBLEMS_SHOWN


@pytest.mark.parametrize("kind", ["--ecs-secrets-file", "--ecs-vars-file"])
def test_a_yaml_file_holding_a_secret_is_refused_without_showing_it(
    kind: str, pytester: pytest.Pytester, plan_of: Callable[..., pytest.RunResult]
) -> None:
    (pytester.path / "t.json").write_text(_taskdef([{"name": "a", "image": "b"}]))
    (pytester.path / "f.yaml").write_text("DB_PASSWORD: !hunter2-secret\n")
    result = plan_of("--ecs-taskdef=t.json", f"{kind}=f.yaml")
    err = result.stderr.str()
    assert result.ret == USAGE_ERROR and "Traceback" not in err
    assert "hunter2-secret" not in err + result.stdout.str()
    assert f"{pytester.path / 'f.yaml'}: line 1, column 14: invalid YAML" in err
    assert "quote values that start with !" in err


def test_an_ecs_var_without_equals_is_refused_without_echoing_it(
    pytester: pytest.Pytester, plan_of: Callable[..., pytest.RunResult]
) -> None:
    (pytester.path / "t.json").write_text(_taskdef([{"name": "a", "image": "b"}]))
    result = plan_of("--ecs-taskdef=t.json", "--ecs-var", "DB_PASSWORD:s3cret-value")
    err = result.stderr.str()
    assert result.ret == USAGE_ERROR and "s3cret-value" not in err + result.stdout.str()
    assert "--ecs-var: entry 1 of 1 has no '='" in err


def test_an_unexpected_failure_of_the_plan_is_a_message_not_a_traceback(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "t.json").write_text(_taskdef([{"name": "a", "image": "b"}]))
    pytester.makeconftest(
        """
        def pytest_ecstask_adjust_task_definition(definition, source):
            raise KeyError("hunter2-secret")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ecs-plan", "--ecs-taskdef=t.json")
    err = result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    assert "Traceback" not in err and "hunter2-secret" not in err + result.stdout.str()
    assert f"ERROR: --ecs-plan stopped on an unexpected KeyError while reading {pytester.path / 't.json'}" in err


@pytest.mark.engine
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=SECRET_VALUES)
def test_secret_values_never_appear_in_a_failing_runs_report(value: str, pytester: pytest.Pytester, image: str) -> None:
    arn = "arn:aws:ssm:us-east-1:123456789012:parameter/db"
    (pytester.path / "t.json").write_text(
        _taskdef(
            [
                {
                    "name": "migrate",
                    "image": image,
                    "essential": False,
                    "command": ["sh", "-c", "echo migration failed; exit 3"],
                    "secrets": [{"name": "DB_PASSWORD", "valueFrom": arn}, {"name": "A=B", "valueFrom": arn}],
                },
                {
                    "name": "app",
                    "image": image,
                    "command": ["sh", "-c", "sleep 60"],
                    "dependsOn": [{"containerName": "migrate", "condition": "SUCCESS"}],
                    "secrets": [{"name": "DB_PASSWORD", "valueFrom": arn}],
                },
            ]
        )
    )
    (pytester.path / "secrets.json").write_text(json.dumps({arn: value}))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.ecs_task("t.json")
        def test_app(ecs_task):
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-v", "--junitxml=report.xml", "--ecs-secrets-file=secrets.json", "-rA"
    )
    result.assert_outcomes(errors=1)
    shown = result.stdout.str() + result.stderr.str() + (pytester.path / "report.xml").read_text()
    assert "migration failed" in shown and "TaskFailedToStart" in shown  # the report is a full one
    assert value not in shown
