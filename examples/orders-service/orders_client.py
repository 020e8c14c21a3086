"""A small client for the orders app's HTTP API, as the tests reach it from the host."""

from __future__ import annotations

import http.client
import json
import time
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

    def get(self, path: str, headers: Mapping[str, str] | None = None, timeout: float = 15.0) -> tuple[int, Any]:
        """GET ``path``: the status and the JSON body.

        A task is RUNNING once its containers have started; the server inside may still be binding its
        port, so connection errors are retried until ``timeout``.
        """
        request = urllib.request.Request(self.base_url + path, headers=dict(headers or {}))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
