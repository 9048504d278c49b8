"""The gateway's batched scheduling (JobWriter) against real Redis: requests that arrive while a
write is in flight go out together, and one bad input in a batch fails only its own request."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from switchyard import InvalidInputError, action
from switchyard.testing import make_registry


class Text(BaseModel):
    text: str


@action("wtest.batch")
def batch(data: Text) -> Text:
    return data


def test_a_batch_with_one_bad_input_answers_each_call(redis_db, redis_url, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", redis_url)
    import switchyard_rq
    from switchyard_gateway._writer import JobWriter
    from switchyard_rq import Call

    writer = JobWriter(make_registry(batch))
    writes = []
    original = switchyard_rq.schedule_many

    def counted(calls, **kwargs):
        writes.append(len(calls))
        return original(calls, **kwargs)

    monkeypatch.setattr(switchyard_rq, "schedule_many", counted)
    bodies = [{"text": str(n)} for n in range(10)]
    bodies[6] = {"text": 6}  # not a string

    async def main():
        calls = [writer.schedule(Call("wtest.batch", body)) for body in bodies]
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(main())
    assert writes == [1, 9]  # the first alone, the nine that came meanwhile in one write
    assert isinstance(answers[6], InvalidInputError)
    handles = [a for n, a in enumerate(answers) if n != 6]
    assert len({h.id for h in handles}) == 9
    assert {h.status for h in handles} == {"queued"}
    assert int(redis_db.llen("rq:queue:default")) == 9


def test_redis_down_fails_the_whole_batch(monkeypatch):
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", "redis://127.0.0.1:1/0")
    from switchyard_gateway._writer import JobWriter
    from switchyard_rq import Call, RedisUnavailableError

    writer = JobWriter(make_registry(batch))

    async def main():
        return await writer.schedule(Call("wtest.batch", {"text": "x"}))

    with pytest.raises(RedisUnavailableError):
        asyncio.run(main())
