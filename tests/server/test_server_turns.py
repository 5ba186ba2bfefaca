"""The server's event loop runs its small writes one per turn, in order, reading its sockets
between two (autolog.server.turns.LoopTurns)."""

from __future__ import annotations

import asyncio

import pytest

from autolog.server.turns import LoopTurns


def test_jobs_run_in_order_one_per_turn_with_the_loop_serving_between() -> None:
    seen: list[str] = []

    async def main() -> list[int]:
        turns = LoopTurns()
        loop = asyncio.get_running_loop()

        def job(i: int) -> int:
            seen.append(f"job {i}")
            # what the loop was given meanwhile (a socket read) runs before the next job
            loop.call_soon(seen.append, f"after job {i}")
            return i * 10

        return list(await asyncio.gather(*(turns.run(lambda i=i: job(i)) for i in range(3))))

    assert asyncio.run(main()) == [0, 10, 20]
    assert seen == ["job 0", "after job 0", "job 1", "after job 1", "job 2", "after job 2"]


def test_a_failing_job_raises_to_its_caller_and_the_next_still_runs() -> None:
    async def main() -> tuple[BaseException | int, ...]:
        turns = LoopTurns()

        def bad() -> int:
            raise ValueError("bad point 'x'")

        return tuple(
            await asyncio.gather(turns.run(bad), turns.run(lambda: 7), return_exceptions=True)
        )

    first, second = asyncio.run(main())
    assert isinstance(first, ValueError) and str(first) == "bad point 'x'"
    assert second == 7


def test_a_job_whose_caller_went_away_is_not_run() -> None:
    ran: list[int] = []

    async def main() -> int:
        turns = LoopTurns()
        gone = asyncio.ensure_future(turns.run(lambda: ran.append(1)))
        kept = asyncio.ensure_future(turns.run(lambda: ran.append(2) or 5))
        await asyncio.sleep(0)  # both queued
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        return int(await kept)

    assert asyncio.run(main()) == 5
    assert ran == [2]


def test_a_job_left_queued_on_a_stopped_loop_does_not_hold_up_the_next_loop() -> None:
    turns = LoopTurns()
    first = asyncio.new_event_loop()
    ran: list[int] = []
    first.create_task(turns.run(lambda: ran.append(0) or first.stop()))  # stops after its turn
    left = first.create_task(turns.run(lambda: ran.append(1)))  # queued; its turn never comes
    first.run_forever()
    first.close()
    assert ran == [0] and not left.done()

    async def one() -> int:
        return int(await turns.run(lambda: 2))

    assert asyncio.run(one()) == 2
