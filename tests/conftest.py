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
    "test_endpoints.py": {
        "test_a_bridge_task_with_a_pid_pause_container_gets_its_credentials",
        "test_a_plan_never_shows_secret_values_environment_files_or_the_task_secret_in_repr",
        "test_a_port_that_could_not_be_bound_is_named_in_a_warning",
        "test_another_tasks_container_is_refused_its_credentials",
        "test_botocore_container_provider_accepts_the_uri_and_token_the_container_got",
        "test_cluster_region_account_zone_and_launch_type_are_settable",
        "test_container_environment_forms",
        "test_credential_secrets_never_show_in_repr_or_reports",
        "test_credentials_endpoint_serves_what_was_configured",
        "test_endpoints_off_sets_no_variables",
        "test_engines_here_and_elsewhere",
        "test_every_container_gets_its_own_metadata_uris_and_one_credentials_variable",
        "test_host_network_containers_reach_the_endpoint",
        "test_options_never_show_secret_values_or_credentials_in_repr",
        "test_port_80_gives_the_exact_ecs_relative_form",
        "test_task_metadata_lists_every_container_with_the_pause_container",
        "test_the_registry_keeps_restart_counts_told_by_the_plugin_process",
        "test_unavailable_endpoints_warn_and_say_which_sdks_refuse_what",
        "test_unknown_credentials_id_gets_ecs_error_body",
        "test_unknown_ids_get_the_agents_answer_for_each_path",
        "test_what_the_agent_answers_for_an_unknown_id_and_a_failure",
        "test_which_server_each_mode_starts_where",
    },
    "test_metadata.py": {
        "test_a_container_never_started_is_created_and_desired_running",
        "test_a_container_not_created_yet_is_pulled",
        "test_a_container_on_the_pause_containers_network_gets_its_network_counters",
        "test_a_container_record_from_the_wire_with_defaults",
        "test_a_port_docker_has_not_published_is_left_out",
        "test_a_record_never_shows_the_credentials_it_serves",
        "test_a_record_survives_the_trip_to_the_server_process",
        "test_a_restart_policy_and_fault_injection_reach_the_record",
        "test_a_task_definition_without_cpu_memory_or_pull_times_leaves_them_out",
        "test_after_a_restart_started_at_is_the_first_and_finished_at_the_last_exit",
        "test_an_essential_exit_makes_every_container_desired_stopped",
        "test_an_exited_non_essential_container_reports_its_exit_code_and_stays_desired_running",
        "test_an_ipv6_address_is_reported_beside_the_ipv4_one",
        "test_bridge_containers_report_their_docker_network_and_every_binding",
        "test_container_metadata_matches_the_reference_and_docker",
        "test_containers_already_removed_are_stopped",
        "test_cpu_below_two_units_is_reported_as_two_as_the_agent_does",
        "test_credentials_requests_may_come_from_the_tasks_own_addresses",
        "test_fault_injection_is_the_task_definitions",
        "test_health_is_what_the_agent_keeps",
        "test_health_output_is_cut_where_the_agent_cuts_it",
        "test_host_and_none_network_modes",
        "test_log_options_are_those_ecs_hands_the_agent",
        "test_on_port_80_credentials_need_no_token_as_on_ecs",
        "test_only_a_task_definition_health_check_gives_health",
        "test_restart_count_only_under_an_enabled_restart_policy_and_only_in_v4",
        "test_stats_carry_the_previous_sample_of_the_container",
        "test_task_limits_read_the_forms_the_api_accepts",
        "test_task_metadata_matches_the_reference_with_the_pause_container",
        "test_task_with_tags",
        "test_the_agent_reports_the_hard_memory_limit_only",
        "test_the_pause_container_reports_its_resources_provisioned",
        "test_the_record_holds_what_the_task_definition_and_the_plan_say",
        "test_the_server_keeps_the_health_it_answered",
        "test_the_shape_check_finds_what_differs",
        "test_the_task_status_is_the_agents",
        "test_under_awsvpc_the_pause_container_owns_every_network",
        "test_v3_container_metadata_has_no_v4_fields",
        "test_v3_lists_only_containers_docker_has_and_v4_the_pulled_ones_too",
        "test_what_is_inspected_for_an_answer",
    },
    "test_pause.py": {
        "test_no_sentinel_for_an_unknown_architecture",
        "test_the_pause_program_is_unchanged",
        "test_the_sentinel_code_reads_stdin_until_end_of_file_then_exits",
        "test_the_sentinel_image_is_its_own_content_addressed_image",
        "test_the_sentinel_is_a_static_elf_that_starts_right_after_its_headers",
        "test_the_sentinel_runs_while_its_stdin_is_open_and_exits_0_at_its_end",
    },
    "test_runtime.py": {
        "test_a_batch_task_that_finishes_during_startup_is_handed_to_the_test",
        "test_an_essential_container_not_restarted_stops_the_task",
        "test_an_essential_container_that_crashes_during_startup_fails_the_start_with_its_exit_and_output",
        "test_awsvpc_containers_share_localhost_and_publish_ports",
        "test_batch_task_running_to_completion_is_a_normal_outcome",
        "test_bridge_dns_servers_search_domains_extra_hosts_and_hostname_reach_the_container",
        "test_complete_waits_for_exit_with_any_code_and_task_volume_is_shared",
        "test_container_ignoring_sigterm_is_killed_after_its_stop_timeout",
        "test_essential_container_exit_stops_the_task",
        "test_everything_is_labelled_and_removed",
        "test_failed_start_raises_with_explanation_and_leaves_nothing",
        "test_failed_success_dependency_stops_dependents_with_143_at_once",
        "test_healthy_gates_on_exec_and_shell_form_health_checks",
        "test_missing_image_with_pull_never_names_image_and_container",
        "test_no_engine_is_a_plain_error_naming_docker_host",
        "test_restart_policy_restarts_an_essential_container_in_place_and_the_task_keeps_running",
        "test_shared_volume_outlives_one_task_and_goes_with_the_last",
        "test_shared_volume_without_autoprovision_must_exist",
        "test_start_dependency_is_running_before_its_dependent_starts",
        "test_start_timeout_gives_up_on_a_dependency_that_never_gets_healthy",
        "test_success_dependency_exiting_zero_lets_dependent_start",
        "test_task_that_fails_to_start_never_reports_running",
        "test_the_engine_is_described_by_kind_and_version",
        "test_the_summary_names_the_engine_the_run_used",
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
