"""The Redis job queue with task priorities: huey's ``PriorityRedisHuey`` (the queue is a sorted
set: higher priority first, first in first out within a priority), plus moving a queue left by
a release that used ``RedisHuey``.

``RedisHuey`` kept the queue at the same key as a list. The worker command moves such a list
when it starts, and any process of this release meeting one later (a web process started before
any worker; a process of the old release still running during a deploy pushed to the then empty
key) moves it instead of failing with WRONGTYPE. Nothing connects to Redis at app creation, so
CLI commands and web processes still start while Redis is down. One Lua script renames the list
to a key of its own (only one of several processes starting at once finds the list), then each
message moves with its task's priority, in its queue order, by a script that adds it to the
sorted set and removes it from the renamed list in one step (nothing is lost or doubled if the
process dies half way). The renamed keys are listed in a set, so the next worker start finishes
what a dead process left. Processes of the old release fail on the sorted set (WRONGTYPE): stop
the old workers and web processes before starting this release's.
"""

from __future__ import annotations

import logging
import struct
import time
import uuid
from collections.abc import Callable

from huey import PriorityRedisHuey
from huey.storage import PriorityRedisStorage
from redis.exceptions import ResponseError

log = logging.getLogger("webapp.jobs")

#: Rename the queue KEYS[1] to KEYS[3] if it is still a list (an old release's queue); note the
#: new key in KEYS[2] (the set of moves in progress). Returns 1 when it renamed.
_TAKE_LIST = """
if redis.call('TYPE', KEYS[1]).ok == 'list' then
  redis.call('RENAME', KEYS[1], KEYS[3])
  redis.call('SADD', KEYS[2], KEYS[3])
  return 1
end
return 0
"""

#: Move the oldest message of list KEYS[1] (if it is still ARGV[1]) into the sorted set KEYS[2]
#: as member ARGV[2] with score ARGV[3]; forget the list in KEYS[3] once it is empty. Returns 1
#: when it moved the message (0: another process moved it first).
_MOVE_ONE = """
local moved = 0
if redis.call('LINDEX', KEYS[1], -1) == ARGV[1] then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
  redis.call('RPOP', KEYS[1])
  moved = 1
end
if redis.call('LLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[3], KEYS[1])
end
return moved
"""


def _wrong_type(exc: ResponseError) -> bool:
    return str(exc).startswith("WRONGTYPE")


class MigratingPriorityStorage(PriorityRedisStorage):
    """huey's priority storage that first moves an old release's list queue (see module)."""

    #: data → the priority its task runs at (set by the huey owning this storage).
    priority_of: Callable[[bytes], int | None] = staticmethod(lambda data: None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.moving_key = f"{self.queue_key}.moving"
        self._take_list = self.conn.register_script(_TAKE_LIST)
        self._move_one = self.conn.register_script(_MOVE_ONE)

    def move_old_queue(self) -> int:
        """Move an old release's list queue, and lists a dead process left half moved, into
        the sorted set. Safe to run in any number of processes at once; returns how many
        messages this call moved."""
        mine = f"{self.queue_key}.moving.{uuid.uuid4().hex}"
        self._take_list(keys=[self.queue_key, self.moving_key, mine])
        moved = 0
        for key in sorted(self.conn.smembers(self.moving_key)):
            moved += self._drain(key.decode() if isinstance(key, bytes) else key)
        if moved:
            log.warning("moved %d queued job(s) from a list queue into the priority queue", moved)
        return moved

    def _drain(self, key: str) -> int:
        moved = 0
        while (data := self.conn.lindex(key, -1)) is not None:
            priority = self.priority_of(data)
            prefix = struct.pack(">Q", int(time.time() * 1e6))  # as huey's own enqueue
            moved += self._move_one(
                keys=[key, self.queue_key, self.moving_key],
                args=[data, prefix + data, -(priority or 0)],
            )
        self.conn.srem(self.moving_key, key)
        return moved

    def _healing(self, method: str, *args, **kwargs):
        operation = getattr(super(), method)
        try:
            return operation(*args, **kwargs)
        except ResponseError as exc:
            if not _wrong_type(exc):
                raise
        self.move_old_queue()
        return operation(*args, **kwargs)

    def enqueue(self, data, priority=None):
        return self._healing("enqueue", data, priority)

    def dequeue(self):
        return self._healing("dequeue")

    def queue_size(self):
        return self._healing("queue_size")

    def enqueued_items(self, limit=None):
        return self._healing("enqueued_items", limit)


class PriorityQueueHuey(PriorityRedisHuey):
    """``PriorityRedisHuey`` whose storage moves an old list queue (priorities from the tasks
    registered on this huey: :meth:`move_old_queue` once they are)."""

    storage_class = MigratingPriorityStorage

    def create_storage(self):
        storage = super().create_storage()
        storage.priority_of = self._priority_of
        return storage

    def _priority_of(self, data: bytes) -> int | None:
        try:
            return self.deserialize_task(data).priority
        except Exception:  # a task this release does not know: it keeps the lowest priority
            return None

    def move_old_queue(self) -> int:
        return self.storage.move_old_queue()
