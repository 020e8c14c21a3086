"""End-to-end tests of the orders task definition, run as ECS would run it.

Unmarked tests share the session task of ``ecs_taskdef`` (pytest.ini). A test that breaks its task
gets a task of its own with the ``ecs_task`` marker.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from orders_client import OrdersApi, app_ready

from pytest_ecstask import Task

HERE = Path(__file__).parent
PRICING_URL = "http://localhost:2773/applications/orders/environments/prod/configurations/pricing"
ADMIN_TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/admin-token-Q7fK2x"


def test_quotes_use_the_pricing_from_the_config_agent(ecs_task: Task, orders: OrdersApi) -> None:
    # The agent listens on 127.0.0.1 only: the app reaches it over the task's shared localhost.
    fetched = ecs_task.containers["app"].exec(["wget", "-q", "-O", "-", PRICING_URL])
    assert fetched.exit_code == 0, fetched.output
    pricing = json.loads(fetched.output)

    status, quote = orders.get("/cgi-bin/quote?quantity=3")
    assert status == 200, quote
    assert quote == {
        "quantity": 3,
        "unitPriceCents": pricing["unitPriceCents"],
        "totalCents": 3 * pricing["unitPriceCents"],
        "currency": pricing["currency"],
    }
    status, refused = orders.get(f"/cgi-bin/quote?quantity={pricing['maxQuantity'] + 1}")
    assert status == 422, refused


def test_the_app_knows_its_task_arn_from_the_metadata_endpoint(ecs_task: Task, orders: OrdersApi) -> None:
    status, info = orders.get("/cgi-bin/info")
    assert status == 200, info
    assert info["taskArn"] == ecs_task.arn


def test_the_admin_endpoint_accepts_only_the_token_from_secrets_manager(orders: OrdersApi) -> None:
    token = json.loads((HERE / "test-secrets.json").read_text())[ADMIN_TOKEN_ARN]

    assert orders.get("/cgi-bin/admin-stats")[0] == 401
    assert orders.get("/cgi-bin/admin-stats", headers={"X-Admin-Token": "guessed"})[0] == 401
    status, stats = orders.get("/cgi-bin/admin-stats", headers={"X-Admin-Token": token})
    assert status == 200, stats
    assert stats == {"schemaVersion": "3"}  # written by the migrate container to the shared volume


def test_requests_are_logged_to_the_apps_awslogs_stream(ecs_task: Task, orders: OrdersApi) -> None:
    request_id = uuid.uuid4().hex
    assert orders.get("/cgi-bin/quote?quantity=2", headers={"X-Request-Id": request_id})[0] == 200

    line = ecs_task.wait_for_log("app", f"request_id={request_id} quantity=2 ", timeout=10)
    # Where ECS would send it: the awslogs group, and the stream <prefix>/<container>/<task id>.
    assert line in ecs_task.awslogs[("/ecs/orders", f"orders/app/{ecs_task.id}")]


@pytest.mark.ecs_task("taskdef.json", wait_for=app_ready())
def test_the_task_stops_when_the_config_agent_dies(ecs_task: Task, orders: OrdersApi) -> None:
    assert orders.get("/cgi-bin/quote?quantity=1")[0] == 200

    ecs_task.containers["config-agent"].kill()
    ecs_task.wait(timeout=30)

    assert ecs_task.stop_code == "EssentialContainerExited"
    assert "'config-agent' exited with code 137" in (ecs_task.stopped_reason or "")
    assert ecs_task.containers["app"].status == "STOPPED"


def test_the_health_check_in_the_task_definition_passes(ecs_task: Task) -> None:
    # The check ECS runs against the image: a command the image lacks would get every task replaced.
    # Docker runs the first check one interval (5 s) after the start.
    ecs_task.containers["app"].wait_until_healthy(timeout=30)
