"""Shared fixtures: a busybox image built locally (no registry is reachable) and task definition files."""

from __future__ import annotations

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


# Engine tests that pass on Podman's Docker API too (Podman 4.3, rootful, without systemd): .ci/podman runs
# them there. The others differ on Podman in ways docs/recipes/podman.md lists.
PODMAN_VERIFIED = {
    "test_gating_without_events.py": {"*"},
    "test_runtime.py": {
        "test_a_batch_task_that_finishes_during_startup_is_handed_to_the_test",
        "test_an_essential_container_not_restarted_stops_the_task",
        "test_an_essential_container_that_crashes_during_startup_fails_the_start_with_its_exit_and_output",
        "test_batch_task_running_to_completion_is_a_normal_outcome",
        "test_bridge_dns_servers_search_domains_extra_hosts_and_hostname_reach_the_container",
        "test_complete_waits_for_exit_with_any_code_and_task_volume_is_shared",
        "test_container_ignoring_sigterm_is_killed_after_its_stop_timeout",
        "test_essential_container_exit_stops_the_task",
        "test_failed_start_raises_with_explanation_and_leaves_nothing",
        "test_failed_success_dependency_stops_dependents_with_143_at_once",
        "test_healthy_gates_on_exec_and_shell_form_health_checks",
        "test_missing_image_with_pull_never_names_image_and_container",
        "test_restart_policy_restarts_an_essential_container_in_place_and_the_task_keeps_running",
        "test_shared_volume_outlives_one_task_and_goes_with_the_last",
        "test_shared_volume_without_autoprovision_must_exist",
        "test_start_dependency_is_running_before_its_dependent_starts",
        "test_start_timeout_gives_up_on_a_dependency_that_never_gets_healthy",
        "test_success_dependency_exiting_zero_lets_dependent_start",
        "test_task_that_fails_to_start_never_reports_running",
        "test_volumes_from_shares_the_source_volumes_read_only",
        "test_wait_until_healthy_returns_or_says_why_not",
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that reach the engine (through docker_api, which image and run use) are marked ``engine``.

    ``-m "not engine"`` is the pure tier: it runs without a Docker engine, in seconds. Engine tests that
    pass on Podman too are marked ``podman`` as well.
    """
    for item in items:
        if "docker_api" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)
            verified = PODMAN_VERIFIED.get(item.path.name, set())
            if "*" in verified or getattr(item, "originalname", item.name) in verified:
                item.add_marker(pytest.mark.podman)


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
