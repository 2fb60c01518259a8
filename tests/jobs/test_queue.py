"""The delivery job as the dispatcher writes it (one Lua call) is the job RQ's own enqueue writes."""

from __future__ import annotations

import redis
from rq import Queue
from rq.job import Job, JobStatus

from verify.delivery.queue import (
    DELIVER,
    FAILURE_TTL,
    FAIR_SHARE_WINDOW,
    JOB_TIMEOUT,
    RESULT_TTL,
    RQDispatcher,
    _lua_string,
    job_id,
    share_key,
)

VARYING = {b"created_at", b"enqueued_at", b"description", b"data"}


def test_dispatched_job_has_every_field_rq_writes(runtime):
    """Same hash fields and constant values as Queue.enqueue's job, and the same position in the
    queue; the varying fields carry this attempt."""
    queue = runtime.queue
    RQDispatcher(queue, runtime.overflow).dispatch("VLattempt")
    assert Queue.all(connection=runtime.redis) == [queue]  # dashboards and workers find it
    reference = queue.enqueue(
        DELIVER,
        "VLreference",
        job_id="reference",
        description="deliver VLreference",
        job_timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
    )

    theirs = runtime.redis.hgetall(reference.key)
    ours = runtime.redis.hgetall(Job.key_for(job_id("VLattempt")))
    assert set(ours) == set(theirs)
    assert {k: v for k, v in ours.items() if k not in VARYING} == {
        k: v for k, v in theirs.items() if k not in VARYING
    }
    assert queue.job_ids == [job_id("VLattempt"), "reference"]

    job = Job.fetch(job_id("VLattempt"), connection=runtime.redis)
    assert job.func_name == DELIVER
    assert job.args == ("VLattempt",)
    assert job.kwargs == {}
    assert job.description == "deliver VLattempt"
    assert job.get_status() == JobStatus.QUEUED
    assert job.origin == queue.name
    assert (job.timeout, job.result_ttl, job.failure_ttl) == (JOB_TIMEOUT, RESULT_TTL, FAILURE_TTL)
    assert job.enqueued_at is not None
    assert job.created_at is not None


def test_dispatched_job_runs_in_a_worker(api, work, runtime):
    """A start's job, written by the dispatcher, is run by an RQ worker to the end."""
    sid = api.start().json["sid"]
    fetched = api.get(f"{api.base}/Verifications/{sid}").json
    attempt_sid = fetched["send_code_attempts"][0]["attempt_sid"]
    work()
    job = Job.fetch(job_id(attempt_sid), connection=runtime.redis)
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == "sent"


def test_lua_literals_escape_every_byte_outside_letters_and_digits():
    """Each field as redis-py encodes it (the script's fields are what a command would send)."""
    encode = redis.Redis().get_encoder().encode
    assert _lua_string(encode("verify")) == '"verify"'
    assert _lua_string(encode(60)) == '"60"'
    assert _lua_string(encode("a'b\"c\\d\n")) == '"a\\039b\\034c\\092d\\010"'
    assert _lua_string(encode("é")) == '"\\195\\169"'
    assert _lua_string(encode(JobStatus.QUEUED)) == '"queued"'


def test_an_account_past_its_fair_share_waits_behind_the_others(runtime):
    """With a share of 3, an account's 4th and 5th new sends go onto the overflow queue; another
    account's send, and sends already under way, stay on the main queue; workers take the main
    queue first."""
    dispatcher = RQDispatcher(runtime.queue, runtime.overflow, fair_share=3)
    for n in range(5):
        dispatcher.dispatch(f"VLa{n}", "ACflood")
    dispatcher.dispatch("VLb0", "ACquiet")
    dispatcher.dispatch("VLfailover")  # no account: a send under way

    assert runtime.queue.job_ids == [
        job_id(s) for s in ("VLa0", "VLa1", "VLa2", "VLb0", "VLfailover")
    ]
    assert runtime.overflow.job_ids == [job_id("VLa3"), job_id("VLa4")]
    waiting = Job.fetch(job_id("VLa3"), connection=runtime.redis)
    assert (waiting.origin, waiting.args) == (runtime.overflow.name, ("VLa3",))
    assert 0 < runtime.redis.ttl(share_key("ACflood")) <= FAIR_SHARE_WINDOW
    assert set(Queue.all(connection=runtime.redis)) == {runtime.queue, runtime.overflow}

    taken = []
    while found := Queue.dequeue_any(runtime.queues, None, connection=runtime.redis):
        taken.append(found[0].args[0])
    assert taken == ["VLa0", "VLa1", "VLa2", "VLb0", "VLfailover", "VLa3", "VLa4"]


def test_a_fair_share_of_zero_keeps_every_job_on_the_main_queue(runtime):
    dispatcher = RQDispatcher(runtime.queue, runtime.overflow, fair_share=0)
    for n in range(5):
        dispatcher.dispatch(f"VLa{n}", "ACflood")
    assert len(runtime.queue.job_ids) == 5
    assert runtime.overflow.job_ids == []
    assert not runtime.redis.exists(share_key("ACflood"))


def test_starts_count_against_their_accounts_share(api, runtime, work):
    """A start hands its account to the dispatcher; jobs on either queue are delivered."""
    runtime.dispatcher = RQDispatcher(runtime.queue, runtime.overflow, fair_share=2)
    starts = [api.start(to=f"+1415555012{n}") for n in range(3)]
    attempts = [r.json["send_code_attempts"][0]["attempt_sid"] for r in starts]
    assert runtime.queue.job_ids == [job_id(a) for a in attempts[:2]]
    assert runtime.overflow.job_ids == [job_id(attempts[2])]
    work()
    for attempt in attempts:
        job = Job.fetch(job_id(attempt), connection=runtime.redis)
        assert (job.get_status(), job.return_value()) == (JobStatus.FINISHED, "sent")
