"""The AWS backend's settings and the requests it would send to ECS. Pure: no AWS, no Docker.

Settings come from ``pytester.parseconfig`` (pytest's own option and ini parsing, in process); the requests
from the task definitions of ``shared/taskdefs`` and small ones made here; ``--ecs-plan --ecs-backend=aws``
runs as a user runs it.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_ecstask.commands import aws_planned
from pytest_ecstask.ecsrequests import (
    ALIVE_TAG,
    HOST_TAG,
    LEASE,
    LEASE_TAG,
    OWNER,
    OWNER_TAG,
    REVISION,
    SECRETS_RESOLVED_BY_ECS,
    SESSION_TAG,
    EcsRequests,
    build_requests,
    model_problems,
    without_values,
)
from pytest_ecstask.errors import EcsTaskError, TaskDefinitionError
from pytest_ecstask.settings import CapacityProvider, Settings, resolve
from pytest_ecstask.taskdef import TaskDefinition, TaskDefinitionWarning, load_task_definition, parse_task_definition

TASKDEFS = Path(__file__).resolve().parents[1].parent / "shared" / "taskdefs"
DOCS = Path(__file__).resolve().parents[1] / "docs"
SESSION = "3f9c0a1b2c4d"
SECRET_ARN = "arn:aws:ssm:eu-west-1:123456789012:parameter/checkout/db-password"
SECRET_VALUE = "correct-horse-battery-staple"  # in the secrets file: never printed
ENV_FILE_ARN = "arn:aws:s3:::checkout-config/app.env"
ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
SUBNET = ("subnet-0a1b2c3d",)
HOST = "ci-runner/0a1b2c3d4e5f6a7b"  # PYTEST_ECSTASK_HOST_ID in the runs of --ecs-plan here

CHECKOUT: dict[str, Any] = {
    "family": "checkout",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "512",
    "memory": "1024",
    "executionRoleArn": "arn:aws:iam::123456789012:role/checkout-execution",
    "tags": [{"key": "team", "value": "payments"}],
    "containerDefinitions": [
        {
            "name": "app",
            "image": f"{ECR}/checkout:1.4.2",
            "portMappings": [{"containerPort": 8080}],
            "environment": [{"name": "DB_HOST", "value": "db.internal"}],
            "environmentFiles": [{"value": ENV_FILE_ARN, "type": "s3"}],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}],
            "logConfiguration": {
                "logDriver": "awsfirelens",
                "secretOptions": [{"name": "apikey", "valueFrom": SECRET_ARN}],
            },
        },
        {"name": "sidecar", "image": "public.ecr.aws/nginx/nginx:1.27", "essential": False},
    ],
}


def checkout(**changes: Any) -> TaskDefinition:
    data = copy.deepcopy(CHECKOUT)
    data.update(changes)
    return parse_task_definition(data, "checkout.json")


def requests(
    taskdef: TaskDefinition | None = None,
    images: dict[str, str] | None = None,
    host: str = "",
    lease: str = "",
    owner: str = "",
    **given: Any,
) -> EcsRequests:
    settings = Settings(**{"aws_subnets": SUBNET, **given})
    return build_requests(taskdef or checkout(), images or {}, settings, SESSION, host, lease=lease, owner=owner)


def refused(taskdef: TaskDefinition | None = None, session: str = SESSION, **given: Any) -> str:
    with pytest.raises(EcsTaskError) as raised:
        build_requests(taskdef or checkout(), {}, Settings(**{"aws_subnets": SUBNET, **given}), session)
    return str(raised.value)


# -- the settings ----------------------------------------------------------------------------------------


def test_the_aws_settings_default_to_docker_fargate_and_a_family_of_its_own(pytester: pytest.Pytester) -> None:
    resolved = resolve(pytester.parseconfig())
    assert (resolved.backend, resolved.aws_cluster, resolved.aws_launch_type) == ("docker", "default", None)
    assert (resolved.aws_capacity_providers, resolved.aws_subnets, resolved.aws_security_groups) == ((), (), ())
    assert (resolved.aws_public_ip, resolved.aws_family_suffix) == (False, "-ecstask")


def test_every_aws_setting_from_the_command_line(pytester: pytest.Pytester) -> None:
    resolved = resolve(
        pytester.parseconfig(
            "--ecs-backend=aws",
            "--ecs-aws-cluster=arn:aws:ecs:eu-west-1:123456789012:cluster/ci",
            "--ecs-aws-capacity-provider=FARGATE_SPOT:3:1",
            "--ecs-aws-capacity-provider=FARGATE:1",
            "--ecs-aws-capacity-provider=spare",
            "--ecs-aws-subnet=subnet-0b",
            "--ecs-aws-subnet=subnet-0a",
            "--ecs-aws-subnet=subnet-0b",
            "--ecs-aws-security-group=sg-01",
            "--ecs-aws-public-ip",
            "--ecs-aws-family-suffix=_ci-7",
        )
    )
    assert resolved.backend == "aws"
    assert resolved.aws_cluster == "arn:aws:ecs:eu-west-1:123456789012:cluster/ci"
    assert resolved.aws_capacity_providers == (
        CapacityProvider("FARGATE_SPOT", 3, 1),
        CapacityProvider("FARGATE", 1, None),
        CapacityProvider("spare", None, None),
    )
    assert resolved.aws_subnets == ("subnet-0b", "subnet-0a")  # in the order given, each once
    assert (resolved.aws_security_groups, resolved.aws_public_ip) == (("sg-01",), True)
    assert resolved.aws_family_suffix == "_ci-7"


def test_every_aws_setting_from_the_ini_file_and_the_command_line_list_replaces_the_ini_list(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        """
        [pytest]
        ecs_backend = aws
        ecs_aws_cluster = ci
        ecs_aws_launch_type = EC2
        ecs_aws_subnets =
            subnet-01
            subnet-02
        ecs_aws_security_groups = sg-01
        ecs_aws_public_ip = true
        ecs_aws_family_suffix = -it
        """
    )
    resolved = resolve(pytester.parseconfig())
    assert (resolved.backend, resolved.aws_cluster, resolved.aws_launch_type) == ("aws", "ci", "EC2")
    assert (resolved.aws_subnets, resolved.aws_security_groups) == (("subnet-01", "subnet-02"), ("sg-01",))
    assert (resolved.aws_public_ip, resolved.aws_family_suffix) == (True, "-it")
    given = resolve(pytester.parseconfig("--ecs-aws-subnet=subnet-09", "--ecs-aws-launch-type=EXTERNAL"))
    assert (given.aws_subnets, given.aws_launch_type) == (("subnet-09",), "EXTERNAL")
    providers = resolve(pytester.parseconfig("-o", "ecs_aws_launch_type=", "-o", "ecs_aws_capacity_providers=a:2"))
    assert (providers.aws_launch_type, providers.aws_capacity_providers) == (None, (CapacityProvider("a", 2),))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["-o", "ecs_backend=cloud"], "ini ecs_backend: 'cloud' is not one of docker, aws"),
        (
            ["-o", "ecs_aws_launch_type=fargate"],
            "ini ecs_aws_launch_type: 'fargate' is not one of FARGATE, EC2, EXTERNAL",
        ),
        (["--ecs-aws-capacity-provider=a:1:2:3"], "--ecs-aws-capacity-provider: 'a:1:2:3' is not NAME[:WEIGHT[:BASE]]"),
        (["--ecs-aws-capacity-provider=:1"], "--ecs-aws-capacity-provider: ':1' is not NAME[:WEIGHT[:BASE]]"),
        (
            ["--ecs-aws-capacity-provider=a:heavy"],
            "--ecs-aws-capacity-provider: 'a:heavy': the weight is a whole number from 0 to 1000, not 'heavy'",
        ),
        (
            ["--ecs-aws-capacity-provider=a:1001"],
            "--ecs-aws-capacity-provider: 'a:1001': the weight is a whole number from 0 to 1000, not '1001'",
        ),
        (
            ["-o", "ecs_aws_capacity_providers=a:1:100001"],
            "ini ecs_aws_capacity_providers: 'a:1:100001': the base is a whole number from 0 to 100000, not '100001'",
        ),
        (
            ["--ecs-aws-capacity-provider=a:1", "--ecs-aws-capacity-provider=a:2"],
            "--ecs-aws-capacity-provider: capacity provider 'a' is given twice; a strategy names each once",
        ),
        (
            [
                "--ecs-aws-capacity-provider=a:1:2",
                "--ecs-aws-capacity-provider=b:1:0",
                "--ecs-aws-capacity-provider=c:1:5",
            ],
            "--ecs-aws-capacity-provider: a, c each have a base; ECS takes a base for one capacity provider of a "
            "strategy only",
        ),
        (["--ecs-aws-subnet=10.0.1.0/24"], "--ecs-aws-subnet: '10.0.1.0/24' is not a subnet id (subnet-...)"),
        (
            ["-o", "ecs_aws_security_groups=default"],
            "ini ecs_aws_security_groups: 'default' is not a security group id (sg-...)",
        ),
        (
            ["--ecs-aws-family-suffix=.test"],
            "--ecs-aws-family-suffix: '.test' has characters ECS refuses in a family: letters, digits, '-' and '_'",
        ),
        (
            ["--ecs-aws-launch-type=EC2", "-o", "ecs_aws_capacity_providers=FARGATE"],
            "--ecs-aws-launch-type (ini ecs_aws_launch_type) and --ecs-aws-capacity-provider (ini "
            "ecs_aws_capacity_providers) exclude each other",
        ),
    ],
)
def test_a_bad_aws_setting_is_named(pytester: pytest.Pytester, args: list[str], error: str) -> None:
    with pytest.raises(EcsTaskError) as raised:
        resolve(pytester.parseconfig(*args))
    assert str(raised.value).startswith(error)


@pytest.mark.parametrize(
    "args",
    [["--ecs-aws-launch-type=EC2", "--ecs-aws-capacity-provider=FARGATE"], ["--ecs-aws-subnet=10.0.1.0/24"]],
)
def test_a_bad_aws_setting_is_a_usage_error_when_pytest_starts_as_the_reference_says(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    reference = (DOCS / "reference.md").read_text(encoding="utf-8")
    checked = reference[reference.index("### When values are checked") : reference.index("### Command-line options")]
    assert result.stderr.lines[0].startswith("ERROR: --ecs-aws-") and result.stderr.lines[0] in checked


def test_a_bad_backend_is_refused_by_the_option_parser(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--ecs-backend=cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ecs-backend: invalid choice: 'cloud'*"])


@pytest.mark.parametrize("args", [["--ecs-backend=aws"], ["-o", "ecs_backend=aws"]])
def test_a_run_on_the_aws_backend_asks_aws_nothing_until_a_test_needs_a_task(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    def no_client(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a boto3 client was made")

    monkeypatch.setattr("boto3.session.Session.client", no_client)
    pytester.makepyfile("def test_without_a_task():\n    pass\n")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["ecstask: session *, tasks run on ECS cluster default (--ecs-backend=aws)"])


# -- RegisterTaskDefinition ------------------------------------------------------------------------------


def test_the_registration_is_the_task_definition_in_a_family_of_its_own_tagged_with_the_session() -> None:
    register = requests().register_task_definition
    expected = copy.deepcopy(CHECKOUT)
    expected["family"] = "checkout-ecstask"
    expected["tags"] = [{"key": "team", "value": "payments"}, {"key": SESSION_TAG, "value": SESSION}]
    assert register == expected  # nothing else: no label, variable or container of a local run
    assert requests(aws_family_suffix="_it").register_task_definition["family"] == "checkout_it"


def test_the_session_tag_of_the_task_definition_is_replaced_not_doubled() -> None:
    stale = [{"key": SESSION_TAG, "value": "old"}, {"key": "team", "value": "payments"}]
    tags = requests(checkout(tags=stale)).register_task_definition["tags"]
    assert tags == [{"key": "team", "value": "payments"}, {"key": SESSION_TAG, "value": SESSION}]


def test_both_requests_carry_the_run_s_host_lease_and_process_for_the_sweep_and_replace_stale_ones() -> None:
    stale = [{"key": LEASE_TAG, "value": "/old.lease"}, {"key": ALIVE_TAG, "value": "2020-01-01T00:00:00Z"}]
    made = requests(checkout(tags=stale), host="ci/1", lease="/tmp/pytest-ecstask/s.lease", owner="ci:4242")
    run_tags = [
        {"key": SESSION_TAG, "value": SESSION},
        {"key": HOST_TAG, "value": "ci/1"},
        {"key": LEASE_TAG, "value": "/tmp/pytest-ecstask/s.lease"},
        {"key": OWNER_TAG, "value": "ci:4242"},
    ]
    assert made.register_task_definition["tags"] == run_tags
    assert made.run_task["tags"] == run_tags


def test_image_mappings_apply_to_the_registration() -> None:
    images = {f"{ECR}/checkout:*": f"{ECR}/checkout:ci-1234"}
    containers = requests(images=images).register_task_definition["containerDefinitions"]
    assert [c["image"] for c in containers] == [f"{ECR}/checkout:ci-1234", "public.ecr.aws/nginx/nginx:1.27"]


def test_a_mapped_image_is_checked_as_ecs_checks_it() -> None:
    # A digest Docker takes and ECS does not (ECS: sha256 and 64 hexadecimal digits).
    short_digest = f"{ECR}/checkout@sha256:{'a' * 40}"
    with pytest.raises(EcsTaskError, match=r"ECS takes only sha256 digests"):
        requests(images={f"{ECR}/checkout:1.4.2": short_digest})


def test_a_template_is_registered_rendered_and_an_image_placeholder_must_be_mapped(tmp_path: Path) -> None:
    from pytest_ecstask.inputs import load_source
    from pytest_ecstask.options import TaskOptions

    template = copy.deepcopy(CHECKOUT)
    template["containerDefinitions"][0]["image"] = "<IMAGE1_NAME>"
    template["containerDefinitions"][0]["environment"] = [{"name": "STAGE", "value": "${stage}"}]
    path = tmp_path / "checkout.json"
    path.write_text(json.dumps(template))
    taskdef = load_source(path, options=TaskOptions(variables={"stage": "ci"}))
    with pytest.raises(EcsTaskError, match=r"pipeline placeholder '<IMAGE1_NAME>'"):
        requests(taskdef)
    mapped = requests(taskdef, images={"<IMAGE1_NAME>": f"{ECR}/checkout:ci"}).register_task_definition
    app = mapped["containerDefinitions"][0]
    assert (app["image"], app["environment"]) == (f"{ECR}/checkout:ci", [{"name": "STAGE", "value": "ci"}])


def test_secrets_and_environment_files_go_as_the_references_ecs_resolves_itself() -> None:
    app = requests().register_task_definition["containerDefinitions"][0]
    assert app["secrets"] == [{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}]
    assert app["logConfiguration"]["secretOptions"] == [{"name": "apikey", "valueFrom": SECRET_ARN}]
    assert app["environmentFiles"] == [{"value": ENV_FILE_ARN, "type": "s3"}]


def test_secrets_without_an_execution_role_are_refused_as_ecs_refuses_them() -> None:
    data = copy.deepcopy(CHECKOUT)
    del data["executionRoleArn"]
    message = refused(parse_task_definition(data, "checkout.json"))
    assert (
        "$.executionRoleArn: missing; ECS refuses container secrets (in 'app') without an executionRoleArn" in message
    )
    assert SECRETS_RESOLVED_BY_ECS in message


def test_a_value_from_ecs_cannot_read_is_refused() -> None:
    data = copy.deepcopy(CHECKOUT)
    data["containerDefinitions"][0]["secrets"] = [{"name": "TOKEN", "valueFrom": "arn:aws:s3:::bucket/token"}]
    message = refused(parse_task_definition(data, "checkout.json"))
    assert "container 'app': secret 'TOKEN': valueFrom 'arn:aws:s3:::bucket/token' is an ARN of 's3'" in message


def test_an_environment_file_that_is_not_in_s3_is_refused() -> None:
    data = copy.deepcopy(CHECKOUT)
    data["containerDefinitions"][0]["environmentFiles"] = [{"value": "config/app.env", "type": "s3"}]
    message = refused(parse_task_definition(data, "checkout.json"))
    assert (
        "$.containerDefinitions[0].environmentFiles[0].value (container 'app'): 'config/app.env' is not the ARN of "
        "an S3 object (arn:aws:s3:::bucket/key); ECS reads environment files from S3 only"
    ) in message


def test_a_family_too_long_with_its_suffix_and_too_many_tags_are_refused() -> None:
    long_family = refused(checkout(family="f" * 250))
    assert (
        f"$.family: '{'f' * 250}-ecstask', with --ecs-aws-family-suffix '-ecstask', has 258 characters" in long_family
    )
    many = [{"key": f"k{i}", "value": "v"} for i in range(50)]
    assert (
        "$.tags: 52 tags with the run's own (its session, host, lease, process and heartbeat); ECS takes 50 at most"
    ) in refused(checkout(tags=many))
    assert len(requests(checkout(tags=many[:48])).register_task_definition["tags"]) == 49  # and the heartbeat


# -- RunTask ---------------------------------------------------------------------------------------------


def test_run_task_runs_one_task_of_the_registered_revision_started_by_and_tagged_with_the_session() -> None:
    run = requests(aws_cluster="ci", aws_security_groups=("sg-01", "sg-02")).run_task
    assert run == {
        "cluster": "ci",
        "taskDefinition": f"checkout-ecstask:{REVISION}",
        "count": 1,
        "startedBy": f"pytest-ecstask-{SESSION}",
        "tags": [{"key": SESSION_TAG, "value": SESSION}],
        "propagateTags": "TASK_DEFINITION",
        "enableExecuteCommand": False,
        "launchType": "FARGATE",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d"],
                "securityGroups": ["sg-01", "sg-02"],
                "assignPublicIp": "DISABLED",
            }
        },
    }


def test_the_public_ip_switch_and_no_security_group() -> None:
    awsvpc = requests(aws_public_ip=True).run_task["networkConfiguration"]["awsvpcConfiguration"]
    assert awsvpc == {"subnets": ["subnet-0a1b2c3d"], "assignPublicIp": "ENABLED"}  # the VPC's default group


def test_a_capacity_provider_strategy_replaces_the_launch_type() -> None:
    providers = (CapacityProvider("FARGATE_SPOT", 3, 1), CapacityProvider("FARGATE", 1), CapacityProvider("spare"))
    run = requests(aws_capacity_providers=providers).run_task
    assert "launchType" not in run
    assert run["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 3, "base": 1},
        {"capacityProvider": "FARGATE", "weight": 1},
        {"capacityProvider": "spare"},
    ]
    assert requests(aws_launch_type="EC2").run_task["launchType"] == "EC2"


def test_an_awsvpc_task_without_a_subnet_is_refused_naming_the_setting() -> None:
    message = refused(aws_subnets=())
    assert message == (
        "checkout.json: $.networkMode: 'awsvpc': ECS runs an awsvpc task in the subnets it is given, and needs one "
        "at least: --ecs-aws-subnet=SUBNET (repeatable; ini ecs_aws_subnets)"
    )


def test_fargate_runs_awsvpc_tasks_only_and_other_modes_get_no_network_configuration() -> None:
    bridge = checkout(networkMode="bridge", requiresCompatibilities=["EC2"])
    assert "'bridge': FARGATE (the default launch type) runs awsvpc tasks only" in refused(bridge, aws_subnets=())
    assert "'bridge': FARGATE runs awsvpc tasks only" in refused(bridge, aws_launch_type="FARGATE")
    data = copy.deepcopy(CHECKOUT)
    del data["networkMode"], data["requiresCompatibilities"]
    unset = parse_task_definition(data, "checkout.json")
    assert "'bridge' (when none is given): FARGATE" in refused(unset)
    for settings in ({"aws_launch_type": "EC2"}, {"aws_capacity_providers": (CapacityProvider("spare"),)}):
        assert "networkConfiguration" not in requests(bridge, aws_subnets=(), **settings).run_task


def test_started_by_keeps_to_what_ecs_takes_and_the_tag_carries_the_session_id() -> None:
    odd = build_requests(checkout(), {}, Settings(aws_subnets=SUBNET), "ci/run 7.1")
    assert odd.run_task["startedBy"] == "pytest-ecstask-ci-run-7-1"
    assert odd.run_task["tags"] == [{"key": SESSION_TAG, "value": "ci/run 7.1"}]
    long = build_requests(checkout(), {}, Settings(aws_subnets=SUBNET), "x" * 200).run_task["startedBy"]
    assert long == ("pytest-ecstask-" + "x" * 200)[:128]
    assert "session id 'run#7' (from PYTEST_ECSTASK_SESSION): ECS takes tag values" in refused(session="run#7")


def test_botocore_s_model_refuses_a_request_of_the_wrong_shape() -> None:
    assert model_problems("RunTask", requests().run_task) == []
    # botocore quotes a refused value; a value may be a secret: the parameter and the types only.
    assert model_problems("RunTask", {"cluster": "ci", "count": "s3cr3t"}) == [
        'RunTask: Missing required parameter in input: "taskDefinition"',
        "RunTask: Invalid type for parameter count, type: <class 'str'>, valid types: <class 'int'>",
    ]
    assert without_values("Invalid length for parameter family, value: , valid min length: 1") == (
        "Invalid length for parameter family, valid min length: 1"
    )
    unknown = model_problems("RegisterTaskDefinition", {"family": "f", "containerDefinitions": [], "labels": {}})
    assert len(unknown) == 1
    assert unknown[0].startswith(
        'RegisterTaskDefinition: Unknown parameter in input: "labels", must be one of: family,'
    )


# -- the task definitions of shared/taskdefs -------------------------------------------------------------

# For the files that load (tests/test_real_taskdefs.py): None = both requests are made and valid under
# botocore's model, with EC2 and a subnet; else words of the error. FARGATE, the default, takes awsvpc only.
REGISTERED = {
    "12_firelens-efs-wrapped-taskDefinition.json": None,  # EFS: refused locally, ECS runs it
    "20_datadog-agent-sysprobe-host-mounts.json": None,
    "23_tf-array-ssm-secrets-dynamic-port.json": "ECS refuses container secrets (in 'nginx-app') without an executionRoleArn",
    "28_consul-server-host-network.json": None,
    "33_ecsagent-shmsize.json": None,
    "47_ecsagent-interactive-tty.json": None,
    "48_tf-array-rails-nginx-links-ssm-names.json": "ECS refuses container secrets (in 'bd-webapp') without",
}


def load(name: str) -> TaskDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TaskDefinitionWarning)
        return load_task_definition(TASKDEFS / name)


@pytest.mark.skipif(not TASKDEFS.exists(), reason="shared/taskdefs is not beside the checkout")
def test_the_files_that_load_are_the_ones_listed() -> None:
    loaded = []
    for path in sorted(TASKDEFS.glob("*.json")):
        try:
            load(path.name)
        except TaskDefinitionError:
            continue
        loaded.append(path.name)
    assert loaded == sorted(REGISTERED)


@pytest.mark.skipif(not TASKDEFS.exists(), reason="shared/taskdefs is not beside the checkout")
@pytest.mark.parametrize("name", sorted(REGISTERED), ids=lambda name: name[:2])
def test_real_task_definitions_make_requests_botocore_takes_or_are_refused_with_a_message(name: str) -> None:
    taskdef = load(name)
    settings = Settings(aws_launch_type="EC2", aws_subnets=SUBNET)
    expected = REGISTERED[name]
    if expected is not None:
        with pytest.raises(EcsTaskError) as raised:
            build_requests(taskdef, {"*": f"{ECR}/mirror:1"}, settings, SESSION)
        assert str(raised.value).startswith(str(TASKDEFS / name)) and expected in str(raised.value)
        return
    made = build_requests(taskdef, {"*": f"{ECR}/mirror:1"}, settings, SESSION)
    assert model_problems("RegisterTaskDefinition", made.register_task_definition) == []
    assert model_problems("RunTask", made.run_task) == []
    containers = made.register_task_definition["containerDefinitions"]
    assert [c["name"] for c in containers] == [c.name for c in taskdef.containers]
    assert {c["image"] for c in containers} == {f"{ECR}/mirror:1"}
    assert ("networkConfiguration" in made.run_task) is (taskdef.network_mode == "awsvpc")
    if taskdef.network_mode != "awsvpc":  # and FARGATE, the default, refuses it
        with pytest.raises(EcsTaskError, match=r"FARGATE \(the default launch type\) runs awsvpc tasks only"):
            build_requests(taskdef, {}, Settings(), SESSION)


def test_a_describe_output_is_registered_without_its_read_only_fields_and_with_its_tags() -> None:
    described = copy.deepcopy(CHECKOUT)
    described.pop("tags")
    described.update(
        taskDefinitionArn="arn:aws:ecs:eu-west-1:123456789012:task-definition/checkout:7",
        revision=7,
        status="ACTIVE",
        compatibilities=["EC2", "FARGATE"],
        requiresAttributes=[{"name": "ecs.capability.secrets.ssm.environment-variables"}],
        registeredBy="arn:aws:iam::123456789012:role/deploy",
    )
    taskdef = parse_task_definition(
        {"taskDefinition": described, "tags": [{"key": "team", "value": "payments"}]}, "described.json"
    )
    register = requests(taskdef).register_task_definition
    assert register == requests().register_task_definition


# -- pytest --ecs-plan --ecs-backend=aws -----------------------------------------------------------------


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTEST_ECSTASK_SESSION", SESSION)
    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", HOST)
    pytester.makefile(".json", checkout=json.dumps(CHECKOUT))
    pytester.makefile(".json", secrets=json.dumps({SECRET_ARN: SECRET_VALUE}))
    pytester.makeini(
        "[pytest]\necs_backend = aws\necs_taskdef = checkout.json\necs_secrets_file = secrets.json\n"
        "ecs_aws_subnets = subnet-0a1b2c3d\n"
    )
    return pytester


def test_the_plan_prints_both_requests_and_never_a_secret_value(project: pytest.Pytester) -> None:
    result = project.runpytest("--ecs-plan", f"--ecs-image={ECR}/checkout:*={ECR}/checkout:ci-1234")
    assert result.ret == 0, result.stderr.str()
    text = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "The AWS backend sends these requests to ECS, in this order (--ecs-plan sends nothing).",
            f"Session id {SESSION} (*",
            f"Secrets go to ECS as their valueFrom references: {SECRETS_RESOLVED_BY_ECS}.",
            "RegisterTaskDefinition: family checkout-ecstask, *",
            f'*"image": "{ECR}/checkout:ci-1234",',
            f'*"valueFrom": "{SECRET_ARN}"',
            f"RunTask: one task in cluster default; {REVISION} is *",
            f'*"taskDefinition": "checkout-ecstask:{REVISION}",',
        ]
    )
    assert SECRET_VALUE not in text + result.stderr.str()
    assert "start order" not in text  # not the Docker plan


def test_the_plan_as_json_is_the_requests(project: pytest.Pytester) -> None:
    result = project.runpytest("--ecs-plan", "--ecs-json", "--ecs-aws-public-ip")
    assert result.ret == 0, result.stderr.str()
    printed = json.loads(result.stdout.str())
    expected = requests(host=HOST, lease=LEASE, owner=OWNER, aws_public_ip=True)
    assert printed == expected.as_data() == aws_planned(project.parseconfig("--ecs-aws-public-ip")).as_data()
    assert list(printed) == ["RegisterTaskDefinition", "RunTask"]
    assert SECRET_VALUE not in result.stdout.str()


def test_what_ecs_would_refuse_is_a_usage_error_of_the_plan(project: pytest.Pytester) -> None:
    result = project.runpytest("--ecs-plan", "-o", "ecs_aws_subnets=")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *checkout.json: $.networkMode: 'awsvpc': *--ecs-aws-subnet=SUBNET*"])
    assert result.stdout.str() == ""


def test_the_docker_plan_is_still_the_default(project: pytest.Pytester) -> None:
    result = project.runpytest("--ecs-plan", "--ecs-backend=docker")
    assert result.ret == 0, result.stderr.str()
    result.stdout.fnmatch_lines(["task checkout:1  network mode awsvpc", "start order*"])


def test_the_example_of_the_docs_is_what_the_command_prints(pytester: pytest.Pytester) -> None:
    page = (DOCS / "aws-backend.md").read_text(encoding="utf-8")
    section = page[page.index("## The plan: `--ecs-plan --ecs-backend=aws`") :]
    blocks = re.findall(r"^```\w*\n(.*?)^```", section, re.M | re.S)
    pytester.makefile(".json", taskdef=blocks[0])
    lines = blocks[1].splitlines()
    last = next(i for i, line in enumerate(lines) if not line.endswith("\\"))  # the command's last line
    args = shlex.split(" ".join(line.rstrip("\\") for line in lines[: last + 1]))
    assert args[:2] == ["$", "pytest"]
    output = "\n".join(lines[last + 1 :])
    session = re.search(r"^Session id (\w+) ", output, re.M)
    host = re.search(r"^Host (\S+) ", output, re.M)
    assert session is not None and host is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTEST_ECSTASK_SESSION", session.group(1))
        mp.setenv("PYTEST_ECSTASK_HOST_ID", host.group(1))
        result = pytester.runpytest(*args[2:])
    assert result.ret == 0, result.stderr.str()
    assert result.stdout.str().strip() == output.strip()
