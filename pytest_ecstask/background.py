"""Work that goes on in a thread while the caller does something else, and whose end the caller awaits."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any


class Background:
    """``fn(*args)`` in a thread; ``result()`` waits for it and raises what it raised. None: nothing to do."""

    def __init__(self, fn: Callable[..., Any] | None, *args: Any) -> None:
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if fn is not None:
            self._thread = threading.Thread(target=self._run, args=(fn, *args), name="ecstask-background", daemon=True)
            self._thread.start()

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:  # handed to the caller of result()
            self._error = exc

    def settle(self) -> None:
        """Wait for it, whatever it raised: something else went wrong first."""
        with contextlib.suppress(BaseException):
            self.result()

    def result(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
