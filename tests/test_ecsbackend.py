"""A task on ECS as the tests hold it, with ECS's answers given here through botocore's Stubber: each request
is checked against the service model (as boto3 checks it), and each answer too. What moto does not model:
container exit codes, STOPPED reasons, health, RunTask's failures, paged CloudWatch Logs events, public
addresses, bridge-mode ports; and the start timeout, on a clock of the test's own. No network, no Docker.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from conftest import REGION
from pytest_ecstask.awstask import AwsTask, Clock
from pytest_ecstask.ecsbackend import EcsBackend
from pytest_ecstask.ecsrequests import run_task
from pytest_ecstask.errors import EcsTaskError, TaskFailedToStart
from pytest_ecstask.options import TaskOptions
from pytest_ecstask.settings import Settings
from pytest_ecstask.taskdef import parse_task_definition

SESSION = "5e55100aa001"
TASK_ID = "0123456789abcdef0123456789abcdef"
ARN = f"arn:aws:ecs:{REGION}:123456789012:task/ci/{TASK_ID}"
DESCRIBE = {"cluster": "ci", "tasks": [ARN], "include": ["TAGS"]}
STREAM = {"logGroupName": "/ci/web", "logStreamName": f"web/app/{TASK_ID}", "startFromHead": True}
WEB: dict[str, Any] = {
    "family": "web",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "portMappings": [{"containerPort": 8080}],
            "healthCheck": {"command": ["CMD-SHELL", "true"]},
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {"awslogs-group": "/ci/web", "awslogs-stream-prefix": "web"},
            },
        },
        {
            "name": "proxy",
            "image": "public.ecr.aws/docker/library/busybox:1.36",
            "essential": False,
            "logConfiguration": {"logDriver": "splunk", "options": {"splunk-url": "https://splunk.example"}},
        },
    ],
}


class StubbedSession:
    """boto3's ``Session.client``, handing out clients whose answers the test gives."""

    def __init__(self) -> None:
        import boto3

        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        self.stubbers: dict[str, Stubber] = {}
        self._clients: dict[str, Any] = {}

    def client(self, service: str, region_name: str | None = None, config: Any = None) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=region_name or REGION, config=config)
            self.stubbers[service] = Stubber(self._clients[service])
            self.stubbers[service].activate()
        return self._clients[service]

    def __call__(self, service: str) -> Stubber:
        self.client(service)
        return self.stubbers[service]

    def count(self, service: str, operation: str) -> list[int]:
        """How often ``operation`` is called from now on, asked or not: a call no answer was given for
        counts too (the backend turns it into an EcsTaskError, which a test must not miss)."""
        calls = [0]

        def counted(**_: Any) -> None:
            calls[0] += 1

        self.client(service).meta.events.register(f"provide-client-params.{service}.{operation}", counted)
        return calls


class FakeClock(Clock):
    """Time that passes only when the task sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 4))
        self.now += seconds


@pytest.fixture
def aws(aws_env: None) -> Iterator[StubbedSession]:
    session = StubbedSession()
    yield session
    for stubber in session.stubbers.values():
        stubber.assert_no_pending_responses()  # every answer given was asked for


def task_of(
    session: StubbedSession, definition: dict[str, Any] | None = None, clock: Clock | None = None, **options: Any
) -> AwsTask:
    taskdef = parse_task_definition(copy.deepcopy(definition or WEB), "web.json")
    settings = Settings(aws_cluster="ci", aws_subnets=("subnet-0a",), aws_launch_type=options.pop("launch_type", None))
    request = run_task(taskdef, settings, SESSION, "web-ecstask:1")
    public = options.pop("public_ip", False)
    return AwsTask(
        EcsBackend(session),
        taskdef,
        request,
        TaskOptions(**{"start_timeout": 60.0, **options}),
        public_ip=public,
        clock=clock or FakeClock(),
    )


ENI = {
    "type": "ElasticNetworkInterface",
    "details": [
        {"name": "networkInterfaceId", "value": "eni-0abc"},
        {"name": "privateIPv4Address", "value": "10.0.1.23"},
    ],
}


def described(status: str, *containers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A task as DescribeTasks (and RunTask) answer."""
    desired = "STOPPED" if status in ("STOPPING", "STOPPED") else "RUNNING"
    return {
        "taskArn": ARN,
        "lastStatus": status,
        "desiredStatus": desired,
        "containers": list(containers),
        "attachments": [ENI],
        **fields,
    }


def container(name: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "lastStatus": status, **fields}


def answer(aws: StubbedSession, *tasks: dict[str, Any]) -> None:
    """DescribeTasks answers, one per call, in order."""
    for task in tasks:
        aws("ecs").add_response("describe_tasks", {"tasks": [task], "failures": []}, DESCRIBE)


def started(aws: StubbedSession, task: AwsTask, *tasks: dict[str, Any]) -> None:
    """RunTask answers PROVISIONING; DescribeTasks answers ``tasks``."""
    aws("ecs").add_response("run_task", {"tasks": [described("PROVISIONING")], "failures": []}, task._request)
    answer(aws, *tasks)


def test_an_essential_container_that_exits_fails_the_start_with_codes_reasons_and_its_last_lines(
    aws: StubbedSession,
) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock)
    events: list[tuple[str, str | None, dict[str, Any]]] = []
    task.progress.listeners.append(lambda kind, name, details: events.append((kind, name, dict(details))))
    started(
        aws,
        task,
        described("PENDING", container("app", "PENDING"), container("proxy", "PENDING")),
        described(
            "STOPPED",
            container("app", "STOPPED", exitCode=1),
            container("proxy", "STOPPED", exitCode=137, reason="Task stopped"),
            stopCode="EssentialContainerExited",
            stoppedReason="Essential container in task exited",
        ),
    )
    aws("logs").add_response(
        "get_log_events",
        {
            "events": [{"timestamp": 1, "message": "starting"}, {"timestamp": 2, "message": "panic: DB_HOST"}],
            "nextForwardToken": "f/1",
        },
        STREAM,
    )
    aws("logs").add_response(
        "get_log_events", {"events": [], "nextForwardToken": "f/1"}, {**STREAM, "nextToken": "f/1"}
    )
    with pytest.raises(TaskFailedToStart) as failed:
        task.start()
    assert str(failed.value).splitlines() == [
        f"task web-ecstask:1 ({TASK_ID}) failed to start: EssentialContainerExited: Essential container in task exited",
        "  app: STOPPED exit code 1",
        "  proxy: STOPPED exit code 137 - Task stopped",
        f"  last log lines of 'app' (/ci/web web/app/{TASK_ID}):",
        "    starting",
        "    panic: DB_HOST",
    ]
    assert clock.sleeps == [0.5]  # the first answer after RunTask at once, the next half a second later
    assert ("container_exited", "app", {"exit_code": 1}) in events
    assert events[-1] == (
        "task_stopped",
        None,
        {"stop_code": "EssentialContainerExited", "reason": "Essential container in task exited"},
    )
    assert [(e.container, e.what) for e in task.timeline][-3:] == [
        ("app", "STOPPED, exit code 1"),
        ("proxy", "STOPPED, exit code 137 (Task stopped)"),
        (None, "task STOPPED: EssentialContainerExited: Essential container in task exited"),
    ]


def test_with_check_false_the_test_gets_the_stopped_task(aws: StubbedSession) -> None:
    task = task_of(aws, check=False)
    stopped = described(
        "STOPPED",
        container("app", "STOPPED", reason="CannotPullContainerError: pull access denied"),
        stopCode="TaskFailedToStart",
        stoppedReason="CannotPullContainerError",
    )
    started(aws, task, stopped)
    assert task.start() is task
    assert (task.status, task.stop_code, task.stopped_reason) == (
        "STOPPED",
        "TaskFailedToStart",
        "CannotPullContainerError",
    )
    app = task.containers["app"]
    assert (app.status, app.exit_code, app.reason) == ("STOPPED", None, "CannotPullContainerError: pull access denied")
    task.close()  # stopped already: no StopTask


def test_health_is_what_ecs_reports_and_waiting_for_it_reads_the_task_again(aws: StubbedSession) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock)
    events: list[tuple[str, str | None]] = []
    task.progress.listeners.append(lambda kind, name, details: events.append((kind, name)))
    started(aws, task, described("RUNNING", container("app", "RUNNING", healthStatus="UNKNOWN")))
    task.start()
    assert task.containers["app"].health == "UNKNOWN"
    answer(
        aws,
        described("RUNNING", container("app", "RUNNING", healthStatus="UNKNOWN")),
        described("RUNNING", container("app", "RUNNING", healthStatus="HEALTHY")),
    )
    assert task.containers["app"].wait_until_healthy(timeout=30).health == "HEALTHY"
    assert events == [("container_started", "app"), ("container_healthy", "app")]
    answer(aws, described("RUNNING", container("app", "RUNNING", healthStatus="UNHEALTHY")))
    clock.now += 1.0  # an answer stands for a second: this read asks again
    with pytest.raises(EcsTaskError, match=r"container 'app' is RUNNING, health UNHEALTHY, not HEALTHY"):
        task.containers["app"].wait_until_healthy()
    with pytest.raises(EcsTaskError, match=r"container 'proxy' has no healthCheck in its task definition"):
        task.containers["proxy"].wait_until_healthy()


def test_a_runtask_that_starts_no_task_says_why(aws: StubbedSession) -> None:
    task = task_of(aws)
    cluster = f"arn:aws:ecs:{REGION}:123456789012:cluster/ci"
    aws("ecs").add_response(
        "run_task",
        {"tasks": [], "failures": [{"arn": cluster, "reason": "RESOURCE:MEMORY", "detail": "no room"}]},
        task._request,
    )
    with pytest.raises(EcsTaskError) as failed:
        task.start()
    assert str(failed.value) == (
        f"RunTask of web-ecstask:1 in cluster ci started no task: RESOURCE:MEMORY ({cluster}): no room"
    )


def test_logs_are_read_page_by_page_and_then_from_where_the_last_read_ended(aws: StubbedSession) -> None:
    task = task_of(aws)
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    logs = aws("logs")
    logs.add_response(
        "get_log_events", {"events": [{"timestamp": 1, "message": "one\n"}], "nextForwardToken": "f/1"}, STREAM
    )
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 2, "message": "two\nthree"}], "nextForwardToken": "f/2"},
        {**STREAM, "nextToken": "f/1"},
    )
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/2"}, {**STREAM, "nextToken": "f/2"})
    assert task.containers["app"].logs() == "one\ntwo\nthree\n"
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 3, "message": "four"}], "nextForwardToken": "f/3"},
        {**STREAM, "nextToken": "f/2"},
    )
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/3"}, {**STREAM, "nextToken": "f/3"})
    assert [(line.time, line.text) for line in task.containers["app"].log_lines()] == [
        ("1970-01-01T00:00:00.001Z", "one"),
        ("1970-01-01T00:00:00.002Z", "two"),
        ("1970-01-01T00:00:00.002Z", "three"),
        ("1970-01-01T00:00:00.003Z", "four"),
    ]


def test_waiting_for_a_log_line_reads_the_stream_until_it_comes(aws: StubbedSession) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock)
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    logs = aws("logs")
    logs.add_client_error("get_log_events", "ResourceNotFoundException", "The specified log stream does not exist.")
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 5, "message": "listening on :8080"}], "nextForwardToken": "f/1"},
        STREAM,
    )
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1"}, {**STREAM, "nextToken": "f/1"})
    assert task.wait_for_log("app", r"listening on :(\d+)", timeout=10) == "listening on :8080"
    assert clock.sleeps[-1:] == [0.5]  # the stream did not exist yet at the first read


def test_a_container_s_last_lines_are_waited_for_a_while_after_it_stopped(aws: StubbedSession) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock)
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    logs = aws("logs")
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/0"}, STREAM)
    answer(aws, described("STOPPED", container("app", "STOPPED", exitCode=0)))
    clock.now += 1.0
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/0"}, {**STREAM, "nextToken": "f/0"})
    logs.add_response(
        "get_log_events",
        {"events": [{"timestamp": 9, "message": "done: 3 rows"}], "nextForwardToken": "f/1"},
        {**STREAM, "nextToken": "f/0"},
    )
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1"}, {**STREAM, "nextToken": "f/1"})
    assert task.wait_for_log("app", r"done: \d+ rows", timeout=30) == "done: 3 rows"


def test_a_container_that_stopped_without_the_line_fails_the_wait_after_the_grace(aws: StubbedSession) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock)
    started(aws, task, described("STOPPED", container("app", "STOPPED", exitCode=0)))
    task.start()
    logs = aws("logs")
    logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/0"}, STREAM)
    for _ in range(8):  # read at 0, 0.5, 1.25, ... 9.59375 and 10 s after it was seen STOPPED
        logs.add_response("get_log_events", {"events": [], "nextForwardToken": "f/0"}, {**STREAM, "nextToken": "f/0"})
    with pytest.raises(
        EcsTaskError, match=r"is STOPPED; no log line matched 'ready', read until 10 s after it stopped"
    ):
        task.wait_for_log("app", "ready", timeout=60)
    assert clock.now == 10.0


def test_a_log_group_that_does_not_exist_is_an_error_that_says_so(aws: StubbedSession) -> None:
    task = task_of(aws)
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    aws("logs").add_client_error(
        "get_log_events", "ResourceNotFoundException", "The specified log group does not exist."
    )
    with pytest.raises(EcsTaskError, match=r"^CloudWatch Logs group /ci/web does not exist, so ECS cannot write"):
        task.containers["app"].logs()


def test_a_task_not_running_within_the_start_timeout_is_stopped_and_fails_the_start(aws: StubbedSession) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock, start_timeout=2.0)
    pending = described("PENDING", container("app", "PENDING"), container("proxy", "PENDING"))
    started(aws, task, pending, pending, pending, pending)
    aws("ecs").add_response(
        "stop_task",
        {"task": described("STOPPING")},
        {"cluster": "ci", "task": ARN, "reason": "pytest-ecstask: did not reach RUNNING within 2 s"},
    )
    with pytest.raises(TaskFailedToStart) as failed:
        task.start()
    assert str(failed.value).splitlines() == [
        f"task web-ecstask:1 ({TASK_ID}) did not reach RUNNING within 2 s (--ecs-start-timeout, ini "
        "ecs_start_timeout); it was PENDING",
        "  app: PENDING",
        "  proxy: PENDING",
    ]
    assert clock.sleeps == [0.5, 0.75, 0.75]  # growing, and cut short at the deadline
    aws("ecs").assert_no_pending_responses()  # stopped
    task.close()  # once only


def test_a_stoptask_that_fails_after_the_timeout_is_said_after_the_timeout_and_tried_again(
    aws: StubbedSession,
) -> None:
    task = task_of(aws, start_timeout=0.5)
    pending = described("PENDING", container("app", "PENDING"))
    started(aws, task, pending, pending)
    aws("ecs").add_client_error("stop_task", "ThrottlingException", "Rate exceeded")
    with pytest.raises(TaskFailedToStart) as failed:
        task.start()
    lines = str(failed.value).splitlines()
    assert lines[0].startswith(f"task web-ecstask:1 ({TASK_ID}) did not reach RUNNING within 0.5 s ")
    assert lines[-1].startswith(
        f"  StopTask failed too (StopTask {ARN} in cluster ci: ThrottlingException: Rate exceeded); the end of "
        "the run tries again"
    )
    aws("ecs").add_response(
        "stop_task",
        {"task": described("STOPPING")},
        {"cluster": "ci", "task": ARN, "reason": "pytest-ecstask: the run is over"},
    )
    task.close("the run is over")  # not closed by the failed StopTask: this one stops it
    task.close()  # and once it is stopped, never again


def test_a_task_describetasks_does_not_know_yet_is_waited_for(aws: StubbedSession) -> None:
    task = task_of(aws)
    started(aws, task)
    aws("ecs").add_response("describe_tasks", {"tasks": [], "failures": [{"arn": ARN, "reason": "MISSING"}]}, DESCRIBE)
    answer(aws, described("RUNNING", container("app", "RUNNING")))
    assert task.start().status == "RUNNING"
    assert "DescribeTasks does not know the task yet" in [e.what for e in task.timeline]


def test_an_error_of_aws_after_runtask_stops_the_task_and_raises_the_error(aws: StubbedSession) -> None:
    task = task_of(aws)
    started(aws, task)
    aws("ecs").add_client_error("describe_tasks", "ExpiredTokenException", "The security token has expired")
    aws("ecs").add_response(
        "stop_task",
        {"task": described("STOPPING")},
        {"cluster": "ci", "task": ARN, "reason": "pytest-ecstask: its start failed"},
    )
    with pytest.raises(EcsTaskError, match=r"^DescribeTasks in cluster ci: ExpiredTokenException: .* have expired"):
        task.start()
    aws("ecs").assert_no_pending_responses()  # StopTask was sent


def test_a_batch_task_whose_essential_container_exited_0_before_it_was_seen_running_started(
    aws: StubbedSession,
) -> None:
    task = task_of(aws)
    started(
        aws,
        task,
        described(
            "STOPPED",
            container("app", "STOPPED", exitCode=0),
            container("proxy", "STOPPED", exitCode=137),  # not essential
            stopCode="EssentialContainerExited",
            stoppedReason="Essential container in task exited",
        ),
    )
    assert task.start() is task
    assert (task.status, task.containers["app"].exit_code) == ("STOPPED", 0)
    task.close()  # stopped already: no StopTask


def test_a_task_ecs_is_stopping_fails_its_start_at_once_with_the_stop_code_and_reason(aws: StubbedSession) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock)
    deprovisioning = described(
        "DEPROVISIONING",
        container("app", "STOPPED", reason="CannotPullContainerError: pull access denied for web"),
        container("proxy", "PENDING"),
        desiredStatus="STOPPED",
        stopCode="TaskFailedToStart",
        stoppedReason="CannotPullContainerError: pull access denied for web",
    )
    started(aws, task, described("PENDING"), deprovisioning)
    with pytest.raises(TaskFailedToStart) as failed:
        task.start()  # no StopTask: ECS stops it already
    assert str(failed.value).splitlines()[:2] == [
        f"task web-ecstask:1 ({TASK_ID}) failed to start: TaskFailedToStart: CannotPullContainerError: pull "
        "access denied for web",
        "  app: STOPPED - CannotPullContainerError: pull access denied for web",
    ]
    assert clock.sleeps == [0.5]


def test_stop_waits_for_stopped(aws: StubbedSession) -> None:
    task = task_of(aws)
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    aws("ecs").add_response(
        "stop_task", {"task": described("STOPPING")}, {"cluster": "ci", "task": ARN, "reason": "enough"}
    )
    answer(aws, described("STOPPING"), described("STOPPED", stopCode="UserInitiated", stoppedReason="enough"))
    task.stop("enough")
    assert (task.status, task.stop_code) == ("STOPPED", "UserInitiated")


def test_the_public_address_is_the_network_interface_s(aws: StubbedSession) -> None:
    task = task_of(aws, public_ip=True)
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    aws("ec2").add_response(
        "describe_network_interfaces",
        {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-0abc", "Association": {"PublicIp": "203.0.113.7"}}]},
        {"NetworkInterfaceIds": ["eni-0abc"]},
    )
    assert task.containers["app"].address(8080) == ("203.0.113.7", 8080)
    assert task.containers["proxy"].host == "203.0.113.7"  # asked once


def test_a_public_address_without_a_network_interface_is_an_error_not_the_private_one(aws: StubbedSession) -> None:
    task = task_of(aws, public_ip=True)
    no_eni = {"type": "ElasticNetworkInterface", "details": [{"name": "privateIPv4Address", "value": "10.0.1.23"}]}
    started(aws, task, described("RUNNING", container("app", "RUNNING"), attachments=[no_eni]))
    task.start()
    with pytest.raises(EcsTaskError, match=r"ECS reports no elastic network interface, whose public IP address"):
        task.containers["app"].address(8080)


def test_a_bridge_task_is_reached_at_its_instance_on_the_port_ecs_bound(aws: StubbedSession) -> None:
    bridge = {**copy.deepcopy(WEB), "networkMode": "bridge", "requiresCompatibilities": ["EC2"]}
    task = task_of(aws, bridge, launch_type="EC2")
    instance = f"arn:aws:ecs:{REGION}:123456789012:container-instance/ci/9f0e"
    binding = {"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": 32768, "protocol": "tcp"}
    running = described(
        "RUNNING", container("app", "RUNNING", networkBindings=[binding]), containerInstanceArn=instance
    )
    started(aws, task, running)
    task.start()
    aws("ecs").add_response(
        "describe_container_instances",
        {"containerInstances": [{"containerInstanceArn": instance, "ec2InstanceId": "i-0abc"}], "failures": []},
        {"cluster": "ci", "containerInstances": [instance]},
    )
    aws("ec2").add_response(
        "describe_instances",
        {"Reservations": [{"Instances": [{"InstanceId": "i-0abc", "PrivateIpAddress": "10.0.2.5"}]}]},
        {"InstanceIds": ["i-0abc"]},
    )
    assert task.containers["app"].address(8080) == ("10.0.2.5", 32768)
    with pytest.raises(
        EcsTaskError, match=r"container 'app' has no portMapping for 9090/tcp; its portMappings: 8080/tcp"
    ):
        task.containers["app"].port(9090)


@pytest.mark.parametrize(
    ("call", "what"),
    [
        (lambda c: c.exec(["ls"]), "container 'app': exec"),
        (lambda c: c.inspect(), "container 'app': inspect"),
        (lambda c: c.pause(), "container 'app': pause"),
        (lambda c: c.unpause(), "container 'app': unpause"),
        (lambda c: c.disconnect(), "container 'app': disconnect"),
        (lambda c: c.reconnect(), "container 'app': reconnect"),
        (lambda c: c.kill(), "container 'app': kill"),
        (lambda c: c.restart(), "container 'app': restart"),
        (lambda c: c.stop(), "container 'app': stopping one container"),
        (lambda c: c.metadata_uri, "container 'app': the metadata endpoint of a local run"),
        (lambda c: c._task.metadata_uri, "the task metadata endpoint of a local run"),
        (lambda c: c._task.credentials_uri, "the credentials endpoint of a local run"),
    ],
)
def test_what_needs_a_docker_engine_raises_one_error_naming_the_backend(
    aws: StubbedSession, call: Any, what: str
) -> None:
    with pytest.raises(EcsTaskError) as raised:
        call(task_of(aws).containers["app"])
    assert str(raised.value).startswith(f"{what} is not possible with --ecs-backend=aws: ")


def test_the_logs_of_another_driver_say_where_they_went(aws: StubbedSession) -> None:
    with pytest.raises(EcsTaskError, match=r"container 'proxy' sends its output with the 'splunk' log driver"):
        task_of(aws).containers["proxy"].logs()


# -- the backend's own calls -----------------------------------------------------------------------------


def test_a_denied_call_names_the_permission_and_the_policy(aws: StubbedSession) -> None:
    aws("ecs").add_client_error(
        "stop_task", "AccessDeniedException", "User: arn:aws:sts::1:assumed-role/ci is not authorized"
    )
    with pytest.raises(EcsTaskError) as denied:
        EcsBackend(aws).stop_task("ci", ARN, "done")
    assert str(denied.value) == (
        f"StopTask {ARN} in cluster ci: AccessDeniedException: User: arn:aws:sts::1:assumed-role/ci is not "
        "authorized. The credentials boto3 found may not call StopTask: the IAM policy in the AWS backend's "
        "documentation lists what the backend calls"
    )


def test_a_refused_parameter_is_named_with_its_type_never_its_value(aws_env: None) -> None:
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    request = {"family": "web", "containerDefinitions": [{"name": "app", "image": "x", "memory": "hunter2-secret"}]}
    with pytest.raises(EcsTaskError) as refused:
        EcsBackend(session).register_task_definition(request)  # refused before anything is sent
    assert "hunter2-secret" not in str(refused.value)
    assert (
        "Invalid type for parameter containerDefinitions[0].memory, type: <class 'str'>, valid types: <class 'int'>"
    ) in str(refused.value)


@pytest.fixture
def botocore_loggers() -> Iterator[None]:
    """The loggers as a fresh process has them (NOTSET: they follow the root logger), put back afterwards."""
    loggers = [logging.getLogger(name) for name in ("botocore", "boto3", "urllib3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.NOTSET)
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def test_botocore_logs_nothing_of_a_request_into_a_test_s_captured_logs_at_debug(
    aws: StubbedSession, botocore_loggers: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    backend = EcsBackend(aws)
    aws("ecs").add_response("stop_task", {"task": described("STOPPING")}, {"cluster": "ci", "task": ARN, "reason": "x"})
    backend.stop_task("ci", ARN, "x")
    assert [r.name for r in caplog.records if r.name.split(".")[0] in ("botocore", "boto3", "urllib3")] == []


def test_revisions_are_deleted_ten_at_a_time_and_a_region_without_deletion_is_no_error(aws: StubbedSession) -> None:
    arns = [f"arn:aws:ecs:{REGION}:123456789012:task-definition/web-ecstask:{n}" for n in range(1, 13)]
    ecs = aws("ecs")
    ecs.add_response(
        "delete_task_definitions",
        {"taskDefinitions": [], "failures": [{"arn": arns[0], "reason": "still in use"}]},
        {"taskDefinitions": arns[:10]},
    )
    ecs.add_response("delete_task_definitions", {"taskDefinitions": []}, {"taskDefinitions": arns[10:]})
    assert EcsBackend(aws).delete_task_definitions(arns) == [(arns[0], "still in use")]
    ecs.add_client_error("delete_task_definitions", "UnsupportedFeatureException", "not in this region")
    assert EcsBackend(aws).delete_task_definitions(arns[:1]) is None  # none deleted: they stay inactive
    # Refused after a first batch was deleted: the rest are named, with ECS's reason.
    ecs.add_response("delete_task_definitions", {"taskDefinitions": []}, {"taskDefinitions": arns[:10]})
    ecs.add_client_error("delete_task_definitions", "UnsupportedFeatureException", "not in this region")
    not_deleted = EcsBackend(aws).delete_task_definitions(arns)
    assert [arn for arn, _ in not_deleted or []] == arns[10:]
    assert all("not in this region" in why for _, why in not_deleted or [])
    assert EcsBackend(aws).delete_task_definitions([]) == []  # nothing asked of ECS
    ecs.assert_no_pending_responses()


def test_the_sweep_finds_the_inactive_revisions_of_every_family_and_takes_each_by_its_described_status(
    aws: StubbedSession,
) -> None:
    from pytest_ecstask.awssweep import INACTIVE_REVISION, session_revisions

    arn = f"arn:aws:ecs:{REGION}:123456789012:task-definition/web-ecstask:"
    ecs = aws("ecs")
    # A family whose revisions are all inactive is listed only with status ALL.
    ecs.add_response("list_task_definition_families", {"families": ["web-ecstask", "web"]}, {"status": "ALL"})
    ecs.add_response(
        "list_task_definitions",
        {"taskDefinitionArns": [arn + "1"]},
        {"familyPrefix": "web-ecstask", "status": "ACTIVE"},
    )
    ecs.add_response(
        "list_task_definitions",
        {"taskDefinitionArns": [arn + "2", arn + "3"]},
        {"familyPrefix": "web-ecstask", "status": "INACTIVE"},
    )
    tags = [{"key": "pytest-ecstask.session", "value": SESSION}]
    # 1 was deregistered since it was listed, 3 is being deleted by another sweep: not touched.
    for n, status in ((1, "INACTIVE"), (2, "INACTIVE"), (3, "DELETE_IN_PROGRESS")):
        described = {"taskDefinitionArn": arn + str(n), "family": "web-ecstask", "revision": n, "status": status}
        expected = {"taskDefinition": arn + str(n), "include": ["TAGS"]}
        ecs.add_response("describe_task_definition", {"taskDefinition": described, "tags": tags}, expected)
    found, unread = session_revisions(EcsBackend(aws), "-ecstask")
    assert [(r.kind, r.id) for r in found] == [(INACTIVE_REVISION, arn + "1"), (INACTIVE_REVISION, arn + "2")]
    assert unread == []
    ecs.assert_no_pending_responses()


def test_tasks_are_described_a_hundred_at_a_time(aws: StubbedSession) -> None:
    arns = [f"arn:aws:ecs:{REGION}:123456789012:task/ci/{n:032x}" for n in range(150)]
    ecs = aws("ecs")
    ecs.add_response(
        "describe_tasks", {"tasks": [], "failures": []}, {"cluster": "ci", "tasks": arns[:100], "include": ["TAGS"]}
    )
    ecs.add_response(
        "describe_tasks", {"tasks": [], "failures": []}, {"cluster": "ci", "tasks": arns[100:], "include": ["TAGS"]}
    )
    assert EcsBackend(aws).describe_tasks("ci", arns) == []


def test_a_failed_describe_leaves_the_last_answer_standing_and_says_so(aws: StubbedSession) -> None:
    clock = FakeClock()
    task = task_of(aws, clock=clock)
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    clock.now += 1.0
    aws("ecs").add_client_error("describe_tasks", "AccessDeniedException", "not authorized")
    described_calls = aws.count("ecs", "DescribeTasks")
    assert task.status == "RUNNING"
    assert task.timeline[-1].what.startswith(
        "the last answer stands: DescribeTasks in cluster ci: AccessDeniedException: not authorized"
    )
    lines = len(task.timeline)
    assert task.containers["app"].status == "RUNNING"  # not asked again within the second
    assert described_calls == [1] and len(task.timeline) == lines


class ReadsTheAddress:
    """A wait strategy, as testcontainers' HTTP one reads its target: address and port."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def wait_until_ready(self, target: Any) -> None:
        self.seen.append((target.get_container_host_ip(), target.get_exposed_port(8080)))


class NeedsDocker:
    def wait_until_ready(self, target: Any) -> None:
        target.get_wrapped_container()


def test_wait_strategies_get_the_address_and_one_that_needs_docker_fails_the_start(aws: StubbedSession) -> None:
    ready = ReadsTheAddress()
    task = task_of(aws, wait_for={"app": ready})
    started(aws, task, described("RUNNING", container("app", "RUNNING")))
    task.start()
    assert ready.seen == [("10.0.1.23", 8080)]
    assert [e.what for e in task.timeline][-2:] == ["waiting for ReadsTheAddress", "ready (ReadsTheAddress)"]
    failing = task_of(aws, wait_for={"app": NeedsDocker()})
    started(aws, failing, described("RUNNING", container("app", "RUNNING")))
    aws("ecs").add_response(
        "stop_task",
        {"task": described("STOPPING")},
        {"cluster": "ci", "task": ARN, "reason": "pytest-ecstask: container app did not get ready"},
    )
    with pytest.raises(TaskFailedToStart) as failed:
        failing.start()
    assert str(failed.value).startswith(
        "container 'app' of task web-ecstask:1 did not get ready: container 'app': a wait strategy that needs a "
        "Docker container is not possible with --ecs-backend=aws: "
    )
