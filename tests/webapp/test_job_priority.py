"""Interactive work first (issue 21): a worker takes a job a person is waiting for (a calendar
write after a booking) before the background backlog queued ahead of it, on the real SQLite and
Redis queues (the Redis one a sorted set: huey's PriorityRedisHuey). A Redis queue left as a
list by the release before is moved into the sorted set once, without losing or doubling a job,
however many processes start at once, and even if one dies half way."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from huey.registry import Message

from webapp import create_app, deps
from webapp.jobs import TASK_GROUPS
from webapp.jobs.queue import PRIORITIES, WIRE_MODULE
from webapp.jobs.redis_queue import PriorityQueueHuey

BULK = "enterprise.redeem_code"
INTERACTIVE = "scheduling.write_interview"
PUSH = "scheduling.apply_changes"
PERIODIC = "scheduling.reconcile_events"


@pytest.fixture(params=["sqlite", "redis"])
def queue_app(request, app_config, tmp_path):
    """An app whose jobs wait in a real queue (SQLite file or a Redis server) until taken."""
    config = dict(app_config, JOBS_IMMEDIATE=False)
    if request.param == "redis":
        import redis

        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        config["REDIS_URL"] = url
    else:
        config["JOBS_SQLITE_PATH"] = str(tmp_path / "q.sqlite3")
    return create_app(config)


def _taken(jobs) -> list[tuple[str, tuple]]:
    """Everything in the queue, in the order a worker takes it (huey.dequeue, as the consumer)."""
    order = []
    while (task := jobs.huey.dequeue()) is not None:
        assert type(task).__module__ == WIRE_MODULE
        order.append((task.name, task.args))
    return order


def _bulk(jobs, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        jobs.enqueue(BULK, i, "k1", b"sealed")


def test_every_task_has_its_lanes_priority():
    specs = {name: spec for group in TASK_GROUPS for name, spec in group.specs.items()}
    assert specs[INTERACTIVE].priority == PRIORITIES["interactive"]
    assert specs["mail.send_message"].priority == PRIORITIES["interactive"]
    assert specs[PUSH].priority == specs["calendar.check_profile"].priority == PRIORITIES["push"]
    assert specs[PERIODIC].priority == PRIORITIES["periodic"]
    assert specs[BULK].priority == specs["enterprise.resume_stalled"].priority == 0
    assert PRIORITIES["interactive"] > PRIORITIES["push"] > PRIORITIES["periodic"] > 0


def test_an_interactive_job_is_taken_before_the_background_backlog(queue_app):
    jobs = deps.jobs.of(queue_app)
    _bulk(jobs, 150)
    jobs.enqueue(INTERACTIVE, 7, "sealed-write")
    assert jobs.pending() == 151
    backlog = jobs.backlog()  # /metrics reads the queue without taking from it
    assert backlog[BULK] == {"pending": 150, "scheduled": 0}
    assert backlog[INTERACTIVE] == {"pending": 1, "scheduled": 0}
    order = _taken(jobs)
    assert order[0] == (INTERACTIVE, (7, "sealed-write"))
    # the background jobs keep their own order behind it
    assert order[1:] == [(BULK, (i, "k1", b"sealed")) for i in range(150)]


def test_push_follow_ups_before_periodic_ticks_before_bulk(queue_app):
    jobs = deps.jobs.of(queue_app)
    _bulk(jobs, 5)
    jobs.huey.enqueue(jobs._tasks[PERIODIC].s())  # what the scheduler does when a tick is due
    jobs.enqueue(PUSH, 3, None)
    _bulk(jobs, 5, start=5)
    jobs.enqueue(INTERACTIVE, 1, "s")
    names = [name for name, _ in _taken(jobs)]
    assert names == [INTERACTIVE, PUSH, PERIODIC] + [BULK] * 10


def test_a_job_scheduled_for_later_keeps_its_priority_when_due(queue_app):
    """A write retried later (or deferred with enqueue_in) still goes before the backlog."""
    jobs = deps.jobs.of(queue_app)
    jobs.enqueue_in(60, INTERACTIVE, 9, "later")
    _bulk(jobs, 20)
    backlog = jobs.backlog()
    assert backlog[INTERACTIVE] == {"pending": 0, "scheduled": 1}
    assert backlog[BULK]["pending"] == 20
    huey = jobs.huey
    # huey queues it with its time; the worker taking it early puts it on the schedule
    early = huey.dequeue()
    assert (early.name, early.args) == (INTERACTIVE, (9, "later"))
    huey.execute(early)
    assert jobs.backlog()[INTERACTIVE] == {"pending": 0, "scheduled": 1}
    [due] = huey.read_schedule(early.eta + timedelta(seconds=1))
    huey.enqueue(due)  # as the consumer's scheduler does when the time comes
    assert _taken(jobs)[0] == (INTERACTIVE, (9, "later"))


def test_enqueue_once_coalesces_with_the_priority_queue(queue_app):
    jobs = deps.jobs.of(queue_app)
    _bulk(jobs, 3)
    assert jobs.enqueue_once("changes:5", PUSH, 5, None) is not None
    assert jobs.enqueue_once("changes:5", PUSH, 5, None) is None
    assert jobs.pending() == 4
    assert _taken(jobs)[0] == (PUSH, (5, None))


# --- Redis: the list queue of the release before ------------------------------------------------


def _old_message(name: str, *args) -> bytes:
    """A message as the release before queued it (no priority), on the wire as before."""
    from huey.serializer import Serializer

    message = Message(uuid.uuid4().hex, f"{WIRE_MODULE}.{name}", None, 0, 0, None, args, {})
    return Serializer().serialize(message)


def _old_list_queue(conn, queue_key: str, names_args) -> None:
    """RedisHuey's queue: LPUSH to enqueue, (B)RPOP to take; the oldest at the right end."""
    for name, args in names_args:
        conn.lpush(queue_key, _old_message(name, *args))


def _redis_app(app_config, redis_url):
    return create_app(dict(app_config, JOBS_IMMEDIATE=False, REDIS_URL=redis_url))


def test_a_list_queue_left_by_the_release_before_moves_into_the_priority_queue(
    app_config, redis_url, monkeypatch
):
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    queue_key = "huey.redis.rendezvous"
    _old_list_queue(conn, queue_key, [(BULK, (i, "k", b"x")) for i in range(40)])
    _old_list_queue(conn, queue_key, [(INTERACTIVE, (1, "booked"))])
    assert conn.type(queue_key) == b"list"
    app = _redis_app(app_config, redis_url)  # a worker of this release starts
    jobs = deps.jobs.of(app)
    assert isinstance(jobs.huey, PriorityQueueHuey)
    from huey.consumer import Consumer

    consumed = []
    monkeypatch.setattr(Consumer, "run", lambda self: consumed.append(self.huey))
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert consumed == [jobs.huey]
    assert conn.type(queue_key) == b"zset"
    assert jobs.pending() == 41
    assert not conn.keys(queue_key + ".moving*")  # nothing left half moved
    order = _taken(jobs)
    assert order[0] == (INTERACTIVE, (1, "booked"))  # priority from its task, queued before it
    assert order[1:] == [(BULK, (i, "k", b"x")) for i in range(40)]  # same order as before
    # a second start finds nothing to move
    assert deps.jobs.of(_redis_app(app_config, redis_url)).huey.move_old_queue() == 0


def test_many_processes_starting_at_once_move_each_job_exactly_once(app_config, redis_url):
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    queue_key = "huey.redis.rendezvous"
    _old_list_queue(conn, queue_key, [(BULK, (i, "k", b"x")) for i in range(300)])
    hueys = [deps.jobs.of(_redis_app(app_config, redis_url)).huey for _ in range(6)]
    barrier = threading.Barrier(len(hueys))
    moved = [0] * len(hueys)

    def start(n: int) -> None:
        barrier.wait()
        moved[n] = hueys[n].move_old_queue()

    threads = [threading.Thread(target=start, args=(n,)) for n in range(len(hueys))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(moved) == 300
    jobs = deps.jobs.of(_redis_app(app_config, redis_url))
    assert [args[0] for _, args in _taken(jobs)] == list(range(300))  # each once, in order
    assert not conn.keys(queue_key + ".moving*")


def test_a_move_cut_short_is_finished_by_the_next_start(app_config, redis_url):
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    queue_key = "huey.redis.rendezvous"
    huey = deps.jobs.of(_redis_app(app_config, redis_url)).huey
    _old_list_queue(conn, queue_key, [(BULK, (i, "k", b"x")) for i in range(30)])
    seen = []
    real = huey.storage.priority_of

    def dies_after_ten(data):
        if len(seen) == 10:
            raise SystemExit("the process is killed")
        seen.append(data)
        return real(data)

    huey.storage.priority_of = dies_after_ten
    with pytest.raises(SystemExit):
        huey.move_old_queue()
    assert huey.pending_count() == 10  # ten moved; twenty wait in the renamed list
    assert conn.scard(queue_key + ".moving") == 1
    jobs = deps.jobs.of(_redis_app(app_config, redis_url))
    assert jobs.huey.move_old_queue() == 20  # as the next worker start does
    assert jobs.pending() == 30
    assert [args[0] for _, args in _taken(jobs)] == list(range(30))
    assert not conn.keys(queue_key + ".moving*")


def test_a_list_pushed_by_an_old_process_after_the_start_is_moved_not_a_wrongtype(
    app_config, redis_url
):
    """During a deploy a web process of the old release may still LPUSH to the key while it is
    empty (so absent: a list again): this release's depth, backlog, enqueue and dequeue all
    move it instead of failing with WRONGTYPE."""
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushdb()
    queue_key = "huey.redis.rendezvous"
    jobs = deps.jobs.of(_redis_app(app_config, redis_url))
    _old_list_queue(conn, queue_key, [(BULK, (1, "k", b"x"))])
    assert jobs.pending() == 1
    assert _taken(jobs) == [(BULK, (1, "k", b"x"))]
    _old_list_queue(conn, queue_key, [(BULK, (2, "k", b"x"))])
    assert jobs.backlog()[BULK] == {"pending": 1, "scheduled": 0}
    assert _taken(jobs) == [(BULK, (2, "k", b"x"))]
    _old_list_queue(conn, queue_key, [(BULK, (3, "k", b"x"))])
    jobs.enqueue(INTERACTIVE, 4, "s")
    assert _taken(jobs) == [(INTERACTIVE, (4, "s")), (BULK, (3, "k", b"x"))]
    _old_list_queue(conn, queue_key, [(BULK, (5, "k", b"x"))])
    assert _taken(jobs) == [(BULK, (5, "k", b"x"))]  # the worker's own dequeue
    assert conn.type(queue_key) == b"none" and not conn.keys(queue_key + ".moving*")
