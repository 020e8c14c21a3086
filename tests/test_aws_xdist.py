"""--ecs-backend=aws under pytest-xdist, end to end: a pytest run with ``-n 2`` in a subprocess, whose controller
and workers reach moto in server mode (in this process) through ``AWS_ENDPOINT_URL``; then what the fake
account holds after the run, and which calls it answered. No Docker, no real AWS.

The account is the one of tests/conftest.py (a VPC with DNS hostnames, a subnet, a security group, a cluster
``ci``), made over HTTP. The server counts the ECS calls it answers, and refuses one when a test says so, as
an IAM policy without that permission would.
"""

from __future__ import annotations

import json
import threading
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REGION

SESSION = "5e55100a0d15"
FAMILY = "web-ecstask"  # the task definition's family and the default --ecs-aws-family-suffix
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
            "memory": 256,  # moto counts container memory, and refuses a task without it
            "portMappings": [{"containerPort": 8080}],
        }
    ],
}
# Four tests of the session task; xdist's load scheduling sends two to each of two workers. Each writes the
# worker it ran in and the ARN of the task it was given.
TESTS = """
import json
import os
from pathlib import Path

import pytest


@pytest.mark.parametrize("n", range(4))
def test_uses_the_session_task(ecs_task, n):
    assert ecs_task.status == "RUNNING"
    record = {"worker": os.environ["PYTEST_XDIST_WORKER"], "arn": ecs_task.arn}
    Path(__file__).with_name(f"used-{n}.json").write_text(json.dumps(record))
"""
# The calls of moto's ECS backend that are counted, and that a test can have refused.
COUNTED = {
    "register_task_definition": "RegisterTaskDefinition",
    "run_task": "RunTask",
    "describe_tasks": "DescribeTasks",
}


class MotoServer:
    """moto in server mode in this process: boto3 clients of it, and the ECS calls it answered."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        import boto3
        from moto.ecs.models import EC2ContainerServiceBackend

        self.url = url
        self.calls: Counter[str] = Counter()
        self.refused: set[str] = set()
        self._lock = threading.Lock()  # the server answers each request in a thread of its own
        for name in COUNTED:
            monkeypatch.setattr(EC2ContainerServiceBackend, name, self._counted(name))
        self.ecs = boto3.client("ecs", region_name=REGION, endpoint_url=url)
        ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # moto names a task's network interface by its DNS name, which it makes only with DNS hostnames on.
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        self.security_group = ec2.create_security_group(GroupName="tests", Description="tests", VpcId=vpc)["GroupId"]
        self.ecs.create_cluster(clusterName="ci")

    def _counted(self, name: str) -> Callable[..., Any]:
        from moto.core.exceptions import JsonRESTError
        from moto.ecs.models import EC2ContainerServiceBackend

        method = getattr(EC2ContainerServiceBackend, name)

        def counted(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
                refused = name in self.refused
            if refused:
                raise JsonRESTError("AccessDeniedException", f"not authorized to perform: ecs:{COUNTED[name]}")
            return method(backend, *args, **kwargs)

        return counted

    def tasks(self, cluster: str = "ci") -> list[dict[str, Any]]:
        """Every task of the cluster, running or stopped."""
        arns = [
            arn
            for desired in ("RUNNING", "STOPPED")
            for arn in self.ecs.list_tasks(cluster=cluster, desiredStatus=desired)["taskArns"]
        ]
        return self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []

    def running(self) -> list[str]:
        """The tasks that are to run, in every cluster."""
        return [
            arn
            for cluster in self.ecs.list_clusters()["clusterArns"]
            for arn in self.ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
        ]

    def revisions(self, family: str) -> list[str]:
        """The family's revisions, active or inactive: none once they are deregistered and deleted."""
        return [
            arn
            for status in ("ACTIVE", "INACTIVE")
            for arn in self.ecs.list_task_definitions(familyPrefix=family, status=status)["taskDefinitionArns"]
        ]


def moto_api(url: str, action: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(f"{url}/moto-api/{action}", data=json.dumps(body or {}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def takes_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether this botocore sends a client's calls where AWS_ENDPOINT_URL says."""
    import boto3

    with monkeypatch.context() as scoped:
        scoped.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        return bool(boto3.session.Session().client("ecs").meta.endpoint_url == "http://127.0.0.1:9")


@pytest.fixture
def moto_server(aws_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MotoServer]:
    """moto in server mode, its state fresh, a task staying RUNNING until it is stopped; boto3 in this
    process and in the processes it starts is sent to it. The runs' leases live in a folder of the test's
    own, the session id is fixed and this host has a fixed id."""
    import botocore

    server_module = pytest.importorskip("moto.server", reason="moto's server mode needs moto[server]")
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    if not takes_endpoint_from_environment(monkeypatch):
        pytest.skip(f"botocore {botocore.__version__} does not take the endpoint from AWS_ENDPOINT_URL")
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("PYTEST_ECSTASK_LEASE_DIR", str(tmp_path / "leases"))
    monkeypatch.setenv("PYTEST_ECSTASK_HOST_ID", "test-host/0123456789abcdef")
    monkeypatch.setenv("PYTEST_ECSTASK_SESSION", SESSION)
    try:
        moto_api(url, "reset")
        # moto moves a task on from RUNNING each time it is described, unless told to wait.
        transition = {"progression": "manual", "times": 10**9}
        moto_api(url, "state-manager/set-transition", {"model_name": "ecs::task", "transition": transition})
        yield MotoServer(url, monkeypatch)
    finally:
        try:
            moto_api(url, "state-manager/unset-transition", {"model_name": "ecs::task"})
            moto_api(url, "reset")
        finally:
            server.stop()


def project(pytester: pytest.Pytester, moto: MotoServer, cluster: str = "ci") -> pytest.Pytester:
    pytester.makefile(".json", web=json.dumps(WEB))
    pytester.makeini(
        f"[pytest]\necs_backend = aws\necs_taskdef = web.json\necs_aws_cluster = {cluster}\n"
        f"ecs_aws_subnets = {moto.subnet}\necs_aws_security_groups = {moto.security_group}\n"
    )
    pytester.makepyfile(test_session=TESTS)
    return pytester


def run_under_xdist(pytester: pytest.Pytester) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "--junitxml=report.xml", timeout=300)


def test_under_xdist_the_session_task_starts_once_and_the_controller_stops_it(
    pytester: pytest.Pytester, moto_server: MotoServer
) -> None:
    result = run_under_xdist(project(pytester, moto_server))
    result.assert_outcomes(passed=4)
    used = [json.loads((pytester.path / f"used-{n}.json").read_text()) for n in range(4)]
    assert {u["worker"] for u in used} == {"gw0", "gw1"}  # both workers had it
    [arn] = {u["arn"] for u in used}  # and it was the same task
    # One worker registered the task definition and ran it; the other followed it.
    assert (moto_server.calls["register_task_definition"], moto_server.calls["run_task"]) == (1, 1)
    [task] = moto_server.tasks()
    assert task["taskArn"] == arn
    assert task["startedBy"] == f"pytest-ecstask-{SESSION}"
    assert task["taskDefinitionArn"].endswith(f":task-definition/{FAMILY}:1")
    # The controller stopped it, once both workers were done.
    assert task["lastStatus"] == task["desiredStatus"] == "STOPPED"
    assert task["stoppedReason"] == "pytest-ecstask: the run is over"
    assert moto_server.running() == []
    assert moto_server.revisions(FAMILY) == []  # deregistered, then deleted


@pytest.mark.parametrize(
    ("cluster", "refused", "run_task_calls", "tasks_made", "message"),
    [
        pytest.param(
            "gone", None, 1, 0, "RunTask of web-ecstask:1 in cluster gone: ClusterNotFoundException: ", id="no-cluster"
        ),
        pytest.param(
            "ci",
            "register_task_definition",
            0,
            0,
            "RegisterTaskDefinition of family web-ecstask: AccessDeniedException: ",
            id="register-refused",
        ),
        # RunTask started the task, then the start failed: the task runs until the controller stops it.
        pytest.param(
            "ci", "describe_tasks", 1, 1, "DescribeTasks in cluster ci: AccessDeniedException: ", id="describe-refused"
        ),
    ],
)
def test_under_xdist_a_failed_start_fails_every_test_the_same_way_and_leaves_nothing(
    pytester: pytest.Pytester,
    moto_server: MotoServer,
    cluster: str,
    refused: str | None,
    run_task_calls: int,
    tasks_made: int,
    message: str,
) -> None:
    if refused is not None:
        moto_server.refused.add(refused)
    result = run_under_xdist(project(pytester, moto_server, cluster))
    moto_server.refused.clear()
    result.assert_outcomes(errors=4)
    cases = ElementTree.parse(pytester.path / "report.xml").getroot().iter("testcase")
    errors = {case.get("name"): (case.findtext("error") or "").strip() for case in cases}
    assert len(errors) == 4
    [error] = set(errors.values())  # the same message for every test, in both workers
    assert error.startswith(message)
    assert "Traceback" not in result.stdout.str()
    # Tried once, in one worker: the other failed with its message, without trying again.
    assert (moto_server.calls["register_task_definition"], moto_server.calls["run_task"]) == (1, run_task_calls)
    assert moto_server.running() == []
    for task in moto_server.tasks():  # a task that RunTask started: stopped by the controller
        assert (task["lastStatus"], task["stoppedReason"]) == ("STOPPED", "pytest-ecstask: the run is over")
    assert len(moto_server.tasks()) == tasks_made
    assert moto_server.revisions(FAMILY) == []
