"""Secrets, environment files, template variables, overrides and hooks, end to end on a real engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import IMAGE, service
from pytest_ecstask.lifecycle import LABEL_SESSION

DATA = Path(__file__).parent / "data"
TASKDEFS = Path(__file__).resolve().parents[1].parent / "shared" / "taskdefs"
SECRET_JSON = json.dumps({"username": "svc", "password": "json-key-secret-value"})
SECRETS = {
    "/shop/db-password": "ssm-secret-value",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop-db-AbCdEf": SECRET_JSON,
}


def shop(image: str) -> dict[str, Any]:
    return {
        "family": "shop",
        "containerDefinitions": [
            {
                "name": "app",
                "image": image,
                "command": service(),
                "environment": [{"name": "MODE", "value": "from-environment"}],
                "environmentFiles": [
                    {"value": "arn:aws:s3:::shop-config/app.env", "type": "s3"},
                    {"value": "arn:aws:s3:::shop-config/defaults.env", "type": "s3"},
                ],
                "secrets": [
                    {
                        "name": "DB_PASSWORD",
                        "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/shop/db-password",
                    },
                    {
                        "name": "DB_USER_PASSWORD",
                        "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:shop-db-AbCdEf:password::",
                    },
                ],
            }
        ],
    }


@pytest.fixture
def project(pytester: pytest.Pytester, image: str) -> pytest.Pytester:
    pytester.makefile(".json", shop=json.dumps(shop(image)), secrets=json.dumps(SECRETS))
    (pytester.path / "app.env").write_text('# app settings\nMODE=from-file\nFEATURE=on\nQUOTED="kept"\n')
    (pytester.path / "defaults.env").write_text("FEATURE=off\nLEVEL=info\n")
    pytester.makeini(
        "[pytest]\necs_pull = never\necs_stop_timeout = 2\naddopts = -p no:benchmark\n"
        "ecs_secrets_file = secrets.json\n"
        "ecs_env_files =\n    arn:aws:s3:::shop-config/app.env=app.env\n"
        "    arn:aws:s3:::shop-config/defaults.env=defaults.env\n"
    )
    return pytester


def engine_has_session(docker_api: Any, output: str) -> int:
    session = next(line.split()[2].rstrip(",") for line in output.splitlines() if line.startswith("ecstask: session"))
    return len(docker_api.containers(all=True, filters={"label": f"{LABEL_SESSION}={session}"}))


def test_secrets_and_environment_files_arrive_in_the_container(project: pytest.Pytester) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("shop.json")
        def test_env(ecs_task):
            env = dict(e.split("=", 1) for e in ecs_task.containers["app"].inspect()["Config"]["Env"])
            assert env["DB_PASSWORD"] == "ssm-secret-value"
            assert env["DB_USER_PASSWORD"] == "json-key-secret-value"   # json-key of a Secrets Manager JSON
            assert env["MODE"] == "from-environment"    # environment beats files
            assert env["FEATURE"] == "on"               # the first file that sets a name wins
            assert env["LEVEL"] == "info"
            assert env["QUOTED"] == '"kept"'            # quotes are kept, as ECS keeps them
        """)
    project.runpytest().assert_outcomes(passed=1)


def test_no_secret_value_reaches_output_junit_or_plan(project: pytest.Pytester) -> None:
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("shop.json")
        def test_fails(ecs_task):
            assert False, repr(ecs_task) + repr(ecs_task.containers) + str(ecs_task.timeline)
        """)
    result = project.runpytest("-v", "--junitxml=report.xml", "--ecs-logs=always", "-rA")
    result.assert_outcomes(failed=1)
    plan = project.runpytest("--ecs-plan", "--ecs-taskdef=shop.json")
    plan_json = project.runpytest("--ecs-plan", "--ecs-taskdef=shop.json", "--ecs-json")
    assert plan.ret == 0 and "DB_PASSWORD (secret)" in plan.stdout.str()
    everything = "".join(
        [
            result.stdout.str(),
            result.stderr.str(),
            (project.path / "report.xml").read_text(),
            plan.stdout.str(),
            plan_json.stdout.str(),
        ]
    )
    for value in ("ssm-secret-value", "json-key-secret-value"):
        assert value not in everything


def test_a_missing_secret_names_it_and_starts_nothing(project: pytest.Pytester, docker_api: Any) -> None:
    (project.path / "secrets.json").write_text(json.dumps({"/shop/db-password": "x"}))
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("shop.json")
        def test_env(ecs_task):
            pass
        """)
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*container 'app': secret 'DB_USER_PASSWORD' (valueFrom "
            "'arn:aws:secretsmanager:*:password::') could not be resolved*"
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert engine_has_session(docker_api, result.stdout.str()) == 0


def test_a_missing_environment_file_names_it_and_starts_nothing(project: pytest.Pytester, docker_api: Any) -> None:
    (project.path / "defaults.env").unlink()
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("shop.json")
        def test_env(ecs_task):
            pass
        """)
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*container 'app': environment file 'arn:aws:s3:::shop-config/defaults.env' mapped to *defaults.env*"]
    )
    assert engine_has_session(docker_api, result.stdout.str()) == 0


def test_template_variables_fill_quoted_and_unquoted_placeholders(project: pytest.Pytester, image: str) -> None:
    template = json.dumps(
        {
            "family": "${family}",
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "${image}",
                    "command": service(),
                    "memory": "__MEMORY__",
                    "environment": [{"name": "GREETING", "value": "${greeting}"}],
                }
            ],
        }
    ).replace('"__MEMORY__"', "${memory}")
    (project.path / "templated.json").write_text(template)
    (project.path / "vars.env").write_text(f"image={image}\nmemory=64\n")
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("templated.json", variables={"greeting": "hello from the marker"})
        def test_rendered(ecs_task):
            app = ecs_task.containers["app"]
            assert ecs_task.family == "rendered-family"
            assert app.inspect()["HostConfig"]["Memory"] == 64 * 1024 * 1024
            assert "GREETING=hello from the marker" in app.inspect()["Config"]["Env"]
        """)
    result = project.runpytest("--ecs-vars-file=vars.env", "--ecs-var=family=rendered-family")
    result.assert_outcomes(passed=1)


def test_unfilled_placeholders_are_listed_all_at_once(project: pytest.Pytester, docker_api: Any) -> None:
    (project.path / "templated.json").write_text(
        '{"family": "t", "containerDefinitions": [{"name": "app", "image": "${image}",\n'
        '  "memory": ${memory}, "cpu": ${cpu}}]}'
    )
    project.makepyfile("""
        import pytest

        @pytest.mark.ecs_task("templated.json")
        def test_rendered(ecs_task):
            pass
        """)
    result = project.runpytest("--ecs-var=image=x")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*2 problems*",
            "*line 2: template variable ${memory} has no value*",
            "*line 2: template variable ${cpu} has no value*",
        ]
    )
    assert engine_has_session(docker_api, result.stdout.str()) == 0


def test_overrides_merge_environment_command_image_and_labels(project: pytest.Pytester, image: str) -> None:
    project.makepyfile(f"""
        import pytest

        OVERRIDES = {{"app": {{"environment": {{"MODE": "overridden", "EXTRA": "1"}},
                               "command": ["sh", "-c", "trap 'exit 0' TERM; echo overridden-command; sleep 3600 & wait"],
                               "image": "{image}", "dockerLabels": {{"team": "qa"}}}}}}

        @pytest.mark.ecs_task("shop.json", overrides=OVERRIDES)
        def test_overridden(ecs_task):
            app = ecs_task.containers["app"]
            config = app.inspect()["Config"]
            assert "MODE=overridden" in config["Env"] and "EXTRA=1" in config["Env"]
            assert config["Labels"]["team"] == "qa"
            ecs_task.wait_for_log("app", "overridden-command")

        @pytest.mark.ecs_task("shop.json", overrides={{"ghost": {{"command": ["x"]}}, "app": {{"memory": 5}}}})
        def test_bad_override(ecs_task):
            pass
        """)
    result = project.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*overrides[[]'ghost'[]]: no container 'ghost' in this task definition*",
            "*overrides[[]'app'[]]: 'memory' cannot be overridden*",
        ]
    )


def test_hooks_adjust_resolve_and_observe(project: pytest.Pytester, image: str) -> None:
    (project.path / "secrets.json").write_text("{}")
    project.makeconftest(f"""
        events = []

        def pytest_ecstask_adjust_task_definition(definition, source):
            definition["containerDefinitions"][0]["environment"].append({{"name": "ADDED", "value": "by-hook"}})

        def pytest_ecstask_resolve_image(image, container):
            return "{image}" if image == "registry.example/shop:1" else None

        def pytest_ecstask_resolve_secret(reference, container):
            if reference.service == "ssm":
                return "from-the-hook"
            if reference.json_key == "password":
                return "json-from-the-hook"

        def pytest_ecstask_resolve_environment_file(value, container):
            return "HOOKED=yes\\n" if value.endswith("defaults.env") else None

        def pytest_ecstask_task_event(task, event, container, at, details):
            events.append((event, container, dict(details)))
        """)
    taskdef = shop("registry.example/shop:1")
    (project.path / "shop.json").write_text(json.dumps(taskdef))
    project.makeini(  # defaults.env has no mapping now: the hook answers for it
        "[pytest]\necs_pull = never\necs_stop_timeout = 2\naddopts = -p no:benchmark\n"
        "ecs_secrets_file = secrets.json\necs_env_files = arn:aws:s3:::shop-config/app.env=app.env\n"
    )
    project.makepyfile("""
        import pytest
        import conftest

        @pytest.mark.ecs_task("shop.json")
        def test_hooked(ecs_task):
            env = ecs_task.containers["app"].inspect()["Config"]["Env"]
            assert "ADDED=by-hook" in env and "HOOKED=yes" in env
            assert "DB_PASSWORD=from-the-hook" in env and "DB_USER_PASSWORD=json-from-the-hook" in env
            ecs_task.containers["app"].kill()
            ecs_task.wait(30)

        def test_events_were_seen():
            kinds = [e[0] for e in conftest.events]
            assert kinds[0] == "planned" and "container_started" in kinds
            assert ("container_exited", "app", {"exit_code": 137}) in conftest.events
            assert kinds[-1] == "task_stopped"
        """)
    project.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


# -- task definitions written by others, run with a vars or secrets file kept in tests/data ------------


def run_real(pytester: pytest.Pytester, name: str, *args: str, containers: list[str]) -> pytest.RunResult:
    shutil.copy(TASKDEFS / name, pytester.path / name)
    # The file's ulimits may exceed what this host allows (nofile 1000000), and its fixed host ports (48
    # publishes 80) would clash with other runs on the engine: the adjust hook caps the one and makes the
    # others dynamic, as a team would for its CI machines.
    pytester.makeconftest("""
        import resource

        def pytest_ecstask_adjust_task_definition(definition, source):
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            for c in definition["containerDefinitions"]:
                for u in c.get("ulimits") or []:
                    u["softLimit"], u["hardLimit"] = min(u["softLimit"], hard), min(u["hardLimit"], hard)
                if definition.get("networkMode", "bridge") == "bridge":
                    for pm in c.get("portMappings") or []:
                        pm["hostPort"] = 0
        """)
    overrides = {c: {"command": service(f"echo {c}-running")} for c in containers}
    pytester.makepyfile(f"""
        import pytest

        @pytest.mark.ecs_task({name!r}, overrides={overrides!r}, images={{"*": {IMAGE!r}}})
        def test_runs(ecs_task):
            for name in {containers!r}:
                ecs_task.wait_for_log(name, name + "-running")
            print("ENV", sorted(ecs_task.containers[{containers[0]!r}].inspect()["Config"]["Env"]))
        """)
    pytester.makeini("[pytest]\necs_pull = never\necs_stop_timeout = 2\naddopts = -p no:benchmark -s\n")
    return pytester.runpytest(*args)


@pytest.mark.skipif(not TASKDEFS.exists(), reason="shared/taskdefs is not beside the checkout")
def test_real_template_14_runs_with_a_vars_file(pytester: pytest.Pytester, image: str) -> None:
    result = run_real(
        pytester,
        "14_tf-tpl-app-xray-envoy-array.json",
        f"--ecs-vars-file={DATA / '14.vars.json'}",
        f"--ecs-secrets-file={DATA / '14.secrets.json'}",
        containers=["tenant-registry", "xray-daemon", "envoy"],
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*DYNAMODB_TABLES=tenants,users*SERVICE_ENDPOINTS=http://registry.local*"])


@pytest.mark.skipif(not TASKDEFS.exists(), reason="shared/taskdefs is not beside the checkout")
def test_real_template_46_runs_with_vars_and_yaml_secrets(pytester: pytest.Pytester, image: str) -> None:
    result = run_real(
        pytester,
        "46_tf-tpl-sre-bot-drop-all-caps-ulimits.json",
        f"--ecs-vars-file={DATA / '46.vars.env'}",
        f"--ecs-secrets-file={DATA / '46.secrets.yaml'}",
        containers=["sre-bot"],
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["*APP_TOKEN=xapp-local-app-token*PICKLE_STRING=local-pickle-value*SLACK_TOKEN=xoxb-local-slack-token*"]
    )


@pytest.mark.skipif(not TASKDEFS.exists(), reason="shared/taskdefs is not beside the checkout")
@pytest.mark.parametrize(
    ("name", "secrets", "containers", "says"),
    [
        (
            "23_tf-array-ssm-secrets-dynamic-port.json",
            "23.secrets.json",
            ["nginx-app"],
            "*DATABASE_PASSWORD=local-rds-password-23*db_url=postgres://db.local/app*",
        ),
        (
            "48_tf-array-rails-nginx-links-ssm-names.json",
            "48.secrets.json",
            ["bd-webapp", "nginx"],
            "*DB_PASSWORD=local-db-password-48*RACK_ENV=test*",
        ),
    ],
)
def test_real_files_with_ssm_secrets_run_with_a_secrets_file(
    pytester: pytest.Pytester, image: str, name: str, secrets: str, containers: list[str], says: str
) -> None:
    result = run_real(pytester, name, f"--ecs-secrets-file={DATA / secrets}", containers=containers)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([says])


def test_session_template_with_vars_and_revision_kept(project: pytest.Pytester, image: str) -> None:
    described = {
        "taskDefinition": {
            "family": "web",
            "revision": 7,
            "containerDefinitions": [{"name": "app", "image": "${image}", "command": service()}],
        }
    }
    (project.path / "described.json").write_text(json.dumps(described))
    project.makepyfile("""
        def test_session(ecs_task):
            assert ecs_task.revision == 7 and ecs_task.family == "web"
            assert ecs_task.containers["app"].status == "RUNNING"
        """)
    result = project.runpytest("--ecs-taskdef=described.json", f"--ecs-var=image={image}")
    result.assert_outcomes(passed=1)
    refused = project.runpytest("--ecs-taskdef=described.json")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*unresolved template placeholder '${image}'*"])


# -- the inputs stage on its own: no engine, milliseconds --------------------------------------------------------


def test_inputs_give_secrets_environment_files_images_and_pull_credentials(tmp_path: Path) -> None:
    from pytest_ecstask.inputs import resolve_inputs
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.taskdef import parse_task_definition

    (tmp_path / "app.env").write_text("MODE=from-file\n")
    pull_secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pull-AbCdEf"
    taskdef = parse_task_definition(
        {
            "family": "shop",
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop:1",
                    "secrets": [{"name": "DB_PASSWORD", "valueFrom": "/shop/db-password"}],
                    "environmentFiles": [{"value": "arn:aws:s3:::shop-config/app.env", "type": "s3"}],
                },
                {
                    "name": "proxy",
                    "image": "private.example/proxy:2",
                    "essential": False,
                    "repositoryCredentials": {"credentialsParameter": pull_secret},
                },
            ],
        },
        "shop.json",
    )
    options = TaskOptions(
        images={"*.dkr.ecr.*.amazonaws.com/shop:*": "shop:local"},
        image_resolver=lambda image, container: "proxy:local" if container == "proxy" else None,
        secrets={"/shop/db-password": "s3cret-value", pull_secret: {"username": "bot", "password": "pull-password"}},
        environment_files={"arn:aws:s3:::shop-config/app.env": str(tmp_path / "app.env")},
    )
    inputs = resolve_inputs(taskdef, options)
    assert inputs.secret_values == {"/shop/db-password": "s3cret-value"}
    assert inputs.environment_files == {"arn:aws:s3:::shop-config/app.env": [("MODE", "from-file")]}
    assert inputs.container_images == {"app": "shop:local", "proxy": "proxy:local"}  # mappings, then the hook
    # Pull credentials are keyed by the image actually pulled, as the runner asks for them.
    assert inputs.registry_auth == {"proxy:local": {"username": "bot", "password": "pull-password"}}
    assert "s3cret-value" not in repr(inputs) and "pull-password" not in repr(inputs)


def test_pull_credentials_come_from_the_hook_first_and_must_be_json() -> None:
    from pytest_ecstask.errors import EcsTaskError
    from pytest_ecstask.inputs import resolve_inputs
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.taskdef import parse_task_definition

    parameter = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pull-AbCdEf"
    taskdef = parse_task_definition(
        [
            {
                "name": "app",
                "image": "private.example/app:1",
                "repositoryCredentials": {"credentialsParameter": parameter},
            }
        ],
        "app.json",
    )
    hooked = TaskOptions(
        secrets={parameter: "not json"},
        registry_auth=lambda image, container: {"username": "hook", "password": "p"},
    )
    assert resolve_inputs(taskdef, hooked).registry_auth == {
        "private.example/app:1": {"username": "hook", "password": "p"}
    }
    with pytest.raises(EcsTaskError, match=r"container 'app': repositoryCredentials .* must hold JSON with username"):
        resolve_inputs(taskdef, TaskOptions(secrets={parameter: "not json"}))
    # Nothing given: the engine's own credentials are used, as without repositoryCredentials.
    assert resolve_inputs(taskdef, TaskOptions()).registry_auth == {}


def test_a_misspelled_wait_for_name_is_said_before_any_secret_is_asked_for() -> None:
    from pytest_ecstask.errors import EcsTaskError
    from pytest_ecstask.inputs import resolve_inputs
    from pytest_ecstask.options import TaskOptions
    from pytest_ecstask.taskdef import parse_task_definition

    asked: list[str] = []
    taskdef = parse_task_definition(
        [{"name": "app", "image": "app:1", "secrets": [{"name": "A", "valueFrom": "/a"}]}], "app.json"
    )
    options = TaskOptions(wait_for={"ap": object()}, secret_resolvers=[lambda ref: asked.append(ref.value_from)])
    with pytest.raises(
        EcsTaskError, match=r"wait_for names 'ap', which is not a container of app \(containers: 'app'\)"
    ):
        resolve_inputs(taskdef, options)
    assert asked == []


def test_overrides_merge_by_name_replace_the_rest_and_list_every_problem() -> None:
    from pytest_ecstask.errors import TaskDefinitionError
    from pytest_ecstask.inputs import load_source
    from pytest_ecstask.options import TaskOptions

    described = {
        "taskDefinition": {
            "family": "web",
            "revision": 7,
            "containerDefinitions": [
                {
                    "name": "app",
                    "image": "app:1",
                    "command": ["serve"],
                    "environment": [{"name": "MODE", "value": "file"}, {"name": "KEEP", "value": "1"}],
                    "dockerLabels": {"team": "web", "tier": "front"},
                }
            ],
        }
    }
    overrides = {
        "app": {
            "environment": {"MODE": "overridden", "NEW": 2},
            "dockerLabels": {"team": "qa"},
            "command": ["sh", "-c", "true"],
            "image": "app:2",
        }
    }
    app = load_source(described, options=TaskOptions(overrides=overrides)).container("app")
    assert app.raw["environment"] == [
        {"name": "MODE", "value": "overridden"},
        {"name": "KEEP", "value": "1"},
        {"name": "NEW", "value": "2"},
    ]
    assert app.raw["dockerLabels"] == {"team": "qa", "tier": "front"}
    assert (app.raw["command"], app.image) == (["sh", "-c", "true"], "app:2")
    assert load_source(described, options=TaskOptions(overrides=overrides)).revision == 7

    with pytest.raises(TaskDefinitionError) as raised:
        load_source(described, options=TaskOptions(overrides={"ghost": {"command": ["x"]}, "app": {"memory": 5}}))
    assert raised.value.problems == [
        "overrides['ghost']: no container 'ghost' in this task definition",
        "overrides['app']: 'memory' cannot be overridden; one of environment, command, entryPoint, image, dockerLabels",
    ]
    # An override is validated as the file is: ECS refuses a command that is not a list of strings.
    with pytest.raises(TaskDefinitionError, match=r"containerDefinitions\[0\]\.command"):
        load_source(described, options=TaskOptions(overrides={"app": {"command": "serve"}}))
