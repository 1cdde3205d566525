"""What every otelplug processor/exporter of a process shares: one Producer
(one ring) per channel, and the resource/scope definitions written into it.

Definitions are content-keyed (``definition_key`` of the encoded payload)
and written once per ring with ``Producer.define``.  A forked child gets a
new ring on its first write, so its definitions must be written again: the
cache below is cleared in the child by an at-fork hook, and is also keyed
by the Producer's ring ``generation`` as a second line of defence.

``process.pid``: a ring belongs to one process, so the resource written
into it should name that process.  With ``stamp_pid`` (the default) the
resource definition carries ``process.pid`` = the writing process's pid,
added if absent and replaced if the resource was detected before a fork
(gunicorn ``--preload``, multiprocessing).  Everything else of the resource
is kept as is.
"""
from __future__ import annotations

import os
import threading
import weakref

from otelplug import codec as _codec
from otelplug.ring import Producer, resolve_channel

_lock = threading.Lock()
_producers: dict[tuple, "SharedProducer"] = {}
_live_caches: "weakref.WeakSet" = weakref.WeakSet()   # anything with reset()


def reset_after_fork(obj) -> None:
    """Call ``obj.reset()`` in a forked child (caches of definition keys)."""
    _live_caches.add(obj)


class Definitions:
    """Resource/scope objects -> definition keys, defined in the current ring."""

    def __init__(self, producer: Producer, codec=None, stamp_pid: bool = True):
        self.producer = producer
        self.codec = codec or _codec.default_impl()
        self.stamp_pid = stamp_pid
        # id(obj) -> (obj, key, payload); the obj reference keeps the id valid
        self._resources: dict[int, tuple] = {}
        self._scopes: dict[int, tuple] = {}
        self._defined: set[int] = set()
        self._generation = -1
        _live_caches.add(self)

    def reset(self) -> None:
        """Forget everything (in a forked child: new pid, new ring)."""
        self._resources = {}
        self._scopes = {}
        self._defined = set()
        self._generation = -1

    def resource_key(self, resource) -> int:
        e = self._resources.get(id(resource))
        if e is None or e[0] is not resource:
            payload = self.codec.encode_resource(resource, os.getpid() if self.stamp_pid else None)
            e = (resource, self.codec.definition_key(payload), payload)
            self._resources[id(resource)] = e
        return self._ensure(e)

    def scope_key(self, scope) -> int:
        if scope is None:
            return 0
        e = self._scopes.get(id(scope))
        if e is None or e[0] is not scope:
            payload = self.codec.encode_scope(scope)
            e = (scope, self.codec.definition_key(payload), payload)
            self._scopes[id(scope)] = e
        return self._ensure(e)

    def _ensure(self, e) -> int:
        key = e[1]
        p = self.producer
        if key in self._defined and self._generation == p.generation:
            return key
        if self._generation != p.generation:
            self._defined = set()
        if p.define(key, e[2]):  # creates the ring if there is none yet
            if self._generation != p.generation:
                self._defined = set()
                self._generation = p.generation
            self._defined.add(key)
        return key


class SharedProducer:
    """A Producer and its Definitions, shared by the processors of one channel
    in this process; closed when the last user lets go."""

    def __init__(self, producer: Producer, definitions: Definitions, key):
        self.producer = producer
        self.definitions = definitions
        self.key = key
        self.users = 0

    @property
    def max_record(self) -> int:
        p = self.producer
        return min(p.max_record, p.capacity // 2 - 16)

    def release(self) -> None:
        with _lock:
            self.users -= 1
            if self.users > 0:
                return
            if _producers.get(self.key) is self:
                del _producers[self.key]
        self.producer.close()


def acquire(channel=None, *, capacity=None, max_record=None, stamp_pid=True,
            producer: Producer | None = None, codec=None) -> SharedProducer:
    """The shared producer for ``channel`` (one ring per process per channel).
    Passing ``producer`` makes a private one around it instead."""
    if producer is not None:
        s = SharedProducer(producer, Definitions(producer, codec, stamp_pid), None)
        s.users = 1
        return s
    kwargs = {}
    if capacity is not None:
        kwargs["capacity"] = capacity
    if max_record is not None:
        kwargs["max_record"] = max_record
    key = (resolve_channel(channel), stamp_pid, id(codec))
    with _lock:
        # the first user's capacity and max_record win for the channel
        s = _producers.get(key)
        if s is None:
            p = Producer(key[0], **kwargs)
            s = SharedProducer(p, Definitions(p, codec, stamp_pid), key)
            _producers[key] = s
        s.users += 1
        return s


def _after_fork_in_child() -> None:
    for d in list(_live_caches):
        d.reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
