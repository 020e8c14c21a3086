"""Shared fixtures: a busybox image built locally (no registry is reachable) and task definition files."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sdkimage import build_sdk_image

from pytest_ecstask.testing import ImageBuildError, build_busybox_image
from pytest_ecstask.testing import service as service  # the tests import it from here

IMAGE = "pytest-ecstask-test/busybox:1"
# Debian's python3, imported from a debootstrap (tools/relay-image.sh); never pulled.
RELAY_IMAGE = "pytest-ecstask-test/relay:debian"


@pytest.fixture(scope="session")
def docker_api() -> Any:
    import docker

    try:
        api = docker.from_env().api
        api.ping()
    except Exception as exc:
        pytest.fail(f"these tests need a Docker engine (bash .ci/example starts one): {exc}", pytrace=False)
    return api


@pytest.fixture(scope="session")
def image(docker_api: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A FROM-scratch image holding Debian's static busybox, built once per run."""
    from filelock import FileLock

    lock = tmp_path_factory.getbasetemp().parent / "busybox-image.lock"
    with FileLock(str(lock)):  # xdist workers build it one at a time; the others find it cached
        try:
            return build_busybox_image(docker_api, IMAGE)
        except ImageBuildError as exc:
            message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def relay_image(docker_api: Any) -> str:
    """Debian's python3 as an image; the tests only check that it is there, as building it needs root."""
    import docker.errors

    try:
        docker_api.inspect_image(RELAY_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {RELAY_IMAGE} is missing: run `bash tools/relay-image.sh` to build it", pytrace=False)
    return RELAY_IMAGE


@pytest.fixture(scope="session")
def sdk_image(docker_api: Any, relay_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The relay image with this interpreter's botocore in /opt/sdk, built once per botocore version."""
    from filelock import FileLock

    lock = tmp_path_factory.getbasetemp().parent / "sdk-image.lock"
    with FileLock(str(lock)):  # xdist workers build it one at a time; the others find it cached
        try:
            return build_sdk_image(docker_api, relay_image, "pytest-ecstask-test/sdk")
        except ImageBuildError as exc:
            message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def kept_tasks_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One at a time across xdist workers: the tests that keep tasks between runs (--ecs-keep, --ecs-reuse)
    and the tests whose sweeps remove kept tasks (--ecs-include-kept, an orphan age of 0)."""
    from filelock import FileLock

    with FileLock(str(tmp_path_factory.getbasetemp().parent / "kept-tasks.lock")):
        yield


@pytest.fixture
def write_taskdef(tmp_path: Path) -> Callable[..., Path]:
    """Writes a task definition (dict or list) to a file and returns its path."""
    counter = iter(range(1000))

    def write(data: Any, name: str = "") -> Path:
        path = tmp_path / (name or f"taskdef{next(counter)}.json")
        path.write_text(json.dumps(data, indent=2))
        return path

    return write


@pytest.fixture
def run(image: str) -> Iterator[Callable[..., Any]]:
    """Starts a task from a dict through the public context-manager API; removes it at teardown."""
    from pytest_ecstask.lifecycle import process_owner
    from pytest_ecstask.task import TaskOptions, create_task

    tasks = []

    def start(taskdef: Any, **options: Any) -> Any:
        options.setdefault("pull", "never")
        options.setdefault("stop_timeout", 5)
        options.setdefault("start_timeout", 60)
        options.setdefault("check", False)
        task = create_task(taskdef, TaskOptions(**options), owner=process_owner())
        tasks.append(task)
        return task.start()

    yield start
    for task in reversed(tasks):
        task.close()


# Engine tests that cannot pass on Podman's Docker API (Podman 4.3, rootful, without systemd), and why. On
# Podman they are skipped with the reason; docs/recipes/podman.md lists them (tests/test_docs.py checks).
PODMAN_DIFFERS = {
    "test_inputs.py::test_real_template_46_runs_with_vars_and_yaml_secrets": (
        "its ulimits: Podman cannot set a container's rlimits where its service may not raise limits "
        "(a CI container), the containers.conf note in docs/recipes/podman.md"
    ),
}


def default_network(api: Any) -> str:
    """The engine's default bridge network: ``bridge`` on Docker, ``podman`` on Podman."""
    return "podman" if is_podman(api) else "bridge"


@functools.lru_cache(maxsize=8)
def is_podman(api: Any) -> bool:
    from pytest_ecstask.runtime import describe_engine

    return describe_engine(api.version(), "").startswith("Podman")


def health_output(container: Any) -> str:
    """The output of the container's last health check, as the engine keeps it."""
    return str(container.inspect()["State"]["Health"]["Log"][-1]["Output"])


@pytest.fixture(autouse=True)
def _skip_what_podman_cannot(request: pytest.FixtureRequest) -> None:
    reason = PODMAN_DIFFERS.get(f"{request.node.path.name}::{getattr(request.node, 'originalname', request.node.name)}")
    if reason and "docker_api" in request.fixturenames and is_podman(request.getfixturevalue("docker_api")):
        pytest.skip(f"on Podman: {reason}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that reach the engine (through docker_api, which image and run use) are marked ``engine``.

    ``-m "not engine"`` is the pure tier: it runs without a Docker engine, in seconds. The engine tier runs
    against Podman too (.ci/podman), where the tests in PODMAN_DIFFERS are skipped with their reason.
    """
    for item in items:
        if "docker_api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)


def needs_model(shape: str, member: str) -> Any:
    """Skip a test of a task-definition field the installed botocore's ECS model does not have yet.

    Such a field is refused as an unknown key on that botocore (the lowest versions CI installs).
    """
    import botocore
    import botocore.session

    members = botocore.session.get_session().get_service_model("ecs").shape_for(shape).members
    return pytest.mark.skipif(
        member not in members, reason=f"botocore {botocore.__version__}'s ECS model has no {shape}.{member}"
    )


NEEDS_RESTART_POLICY = needs_model("ContainerDefinition", "restartPolicy")
NEEDS_FAULT_INJECTION = needs_model("RegisterTaskDefinitionRequest", "enableFaultInjection")


# -- AWS, faked: moto in this process, or botocore's Stubber ----------------------------------------------

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Made-up credentials and a region for boto3, and nothing of this machine's own AWS configuration."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class MockedAws:
    """An account faked by moto: a VPC with a subnet and a security group, and an ECS cluster ``ci``."""

    def __init__(self) -> None:
        import boto3

        self.ecs = boto3.client("ecs", region_name=REGION)
        self.logs = boto3.client("logs", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto names a task's network interface by its DNS name, which it makes only with DNS hostnames on.
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        self.security_group = ec2.create_security_group(GroupName="tests", Description="tests", VpcId=vpc)["GroupId"]
        self.ecs.create_cluster(clusterName="ci")

    def tasks(self, desired: str = "STOPPED") -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster="ci", desiredStatus=desired)["taskArns"]
        return self.ecs.describe_tasks(cluster="ci", tasks=arns, include=["TAGS"])["tasks"] if arns else []

    def revisions(self, family: str) -> list[str]:
        return [
            arn
            for status in ("ACTIVE", "INACTIVE")
            for arn in self.ecs.list_task_definitions(familyPrefix=family, status=status)["taskDefinitionArns"]
        ]


@pytest.fixture
def mocked_aws(aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MockedAws]:
    """moto in this process (pytester's in-process runs too); a task stays RUNNING until it is stopped.

    The runs' leases live in a folder of the test's own, and this host has a fixed id.
    """
    moto = pytest.importorskip("moto")
    from moto.moto_api import state_manager

    monkeypatch.setenv("PYTEST_ECSTASK_LEASE_DIR", str(tmp_path / "leases"))
    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", "test-host/0123456789abcdef")
    with moto.mock_aws():
        # moto moves a task on from RUNNING each time it is described, unless told to wait.
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
        try:
            yield MockedAws()
        finally:
            state_manager.unset_transition("ecs::task")
