"""A small client for the orders app's HTTP API, as the tests reach it from the host."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from pytest_ecstask import Task


class OrdersApi:
    """The app's HTTP API, on the host port the task published for containerPort 8080."""

    def __init__(self, task: Task) -> None:
        app = task.containers["app"]
        self.base_url = f"http://{app.host}:{app.port(8080)}"

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """GET ``path``: the status and the JSON body. The task's readiness check (conftest.py) has
        already seen the app answer, so no retry is needed."""
        request = urllib.request.Request(self.base_url + path, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


def app_ready() -> dict[str, Any]:
    """Readiness beyond ECS gating: the task is RUNNING once its containers started; the app answers later."""
    from testcontainers.core.wait_strategies import HttpWaitStrategy

    return {"app": HttpWaitStrategy(8080, "/cgi-bin/health").for_status_code(200).with_startup_timeout(30)}
