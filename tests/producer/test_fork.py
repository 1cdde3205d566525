"""After fork, every process writes through a ring of its own, with its own
resource definition (its pid), and no user hook."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otelplug import ShmSpanProcessor

from producer_helpers import drain
from tests.waiting import wait_child, wait_for

_tracer = None   # set in the parent before the pool forks
_task_pids = None   # shared array (pool test): the pid that ran each task


def _work(i):
    with _tracer.start_as_current_span(f"task-{i}") as span:
        span.set_attribute("task", i)
    if _task_pids is not None:
        _task_pids[i] = os.getpid()
        if i == 0:
            # hold this worker until another one has run a task, so the pool
            # really uses two processes whatever the machine's load
            wait_for(lambda: any(p not in (0, os.getpid()) for p in _task_pids[:]),
                     what="a second pool worker to run a task")
    return os.getpid()


def _setup(service):
    global _tracer
    proc = ShmSpanProcessor()
    tp = TracerProvider(resource=Resource.create({"service.name": service}), shutdown_on_exit=False)
    tp.add_span_processor(proc)
    _tracer = tp.get_tracer("forks")
    return proc, tp


def _check_each_ring_names_its_process(got):
    for pid, span in got.spans:
        assert got.resource_of(pid, span).attributes["process.pid"] == pid
        assert got.scope_of(pid, span).name == "forks"


def test_os_fork_child_gets_its_own_ring_and_resource():
    proc, _ = _setup("forked")
    with _tracer.start_as_current_span("parent-before"):
        pass
    child = os.fork()
    if child == 0:
        code = 1
        try:
            for i in range(3):
                _work(i)
            code = 0 if proc.written == 1 + 3 else 2   # 1 inherited from the parent
        finally:
            os._exit(code)
    assert wait_child(child) == 0
    with _tracer.start_as_current_span("parent-after"):
        pass
    got = drain()
    by_pid = {}
    for pid, span in got.spans:
        by_pid.setdefault(pid, []).append(span.name)
    assert by_pid == {os.getpid(): ["parent-before", "parent-after"],
                      child: ["task-0", "task-1", "task-2"]}
    _check_each_ring_names_its_process(got)
    proc.shutdown()


def test_multiprocessing_pool_workers_each_write_their_own_ring():
    global _task_pids
    proc, _ = _setup("pool")
    ctx = multiprocessing.get_context("fork")
    _task_pids = ctx.Array("q", 60, lock=False)
    try:
        with ctx.Pool(3) as pool:
            pids = pool.map(_work, range(60), chunksize=1)
            pool.close()
            pool.join()
    finally:
        _task_pids = None
    got = drain(until_no_producers=False)
    assert sorted(s.attributes["task"] for _, s in got.spans) == list(range(60))
    for pid, span in got.spans:
        assert pids[span.attributes["task"]] == pid
    assert len({pid for pid, _ in got.spans}) == len(set(pids)) >= 2
    _check_each_ring_names_its_process(got)
    proc.shutdown()


FORK_AFTER_PROVIDER = textwrap.dedent("""
    import os, sys
    import otelplug.producer          # as an app does before making its provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    # a resource made directly: no detector runs, so no thread pool yet
    provider = TracerProvider(resource=Resource({"service.name": "app"}))
    import concurrent.futures.thread  # any library may import it later
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    from tests.waiting import wait_child
    sys.exit(wait_child(pid))         # a deadlocked child is killed, not left behind
""")


def test_forking_after_the_sdk_provider_does_not_deadlock_the_child():
    """The SDK's TracerProvider fork handler uses a thread pool in the child;
    importing otelplug first keeps concurrent.futures' own handler ahead of
    it, or the child would wait forever on that pool's lock."""
    run = subprocess.run([sys.executable, "-c", FORK_AFTER_PROVIDER], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
