"""Waiting for a state instead of sleeping and hoping.

Tests run on a shared, loaded 2-core machine: a fixed sleep followed by an
exact assertion fails whenever the machine is slower than the author's.
``wait_for`` polls until the state holds, with a generous deadline, and
says what it was waiting for (and the last value seen) when it gives up.
"""
from __future__ import annotations

import os
import signal
import time
from typing import Callable, TypeVar

T = TypeVar("T")

#: long enough for a loaded machine; a passing test never waits for it
DEFAULT_TIMEOUT = 60.0


def wait_for(predicate: Callable[[], T], timeout: float = DEFAULT_TIMEOUT, what: str = "the condition",
             interval: float = 0.02) -> T:
    """Call ``predicate`` until it returns something truthy and return that.
    An exception from it counts as "not yet" (a server still starting);
    after ``timeout`` seconds an AssertionError names ``what``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:   # noqa: BLE001 - a state not reached yet
            value, last = None, exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def wait_child(pid: int, timeout: float = DEFAULT_TIMEOUT) -> int:
    """The exit code of forked child ``pid``.  A child that deadlocks (a
    lock another thread held at fork time) is killed after ``timeout`` and
    the test fails instead of hanging."""
    def exited():
        done, status = os.waitpid(pid, os.WNOHANG)
        return (status,) if done == pid else None
    try:
        (status,) = wait_for(exited, timeout, f"forked child {pid} to exit")
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    return os.waitstatus_to_exitcode(status)
