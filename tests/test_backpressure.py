"""A dashboard that is behind holds the engine back instead of piling its events up: the
reader posts the next batch only once the last was handled, the engine child's sender
says when events wait unsent, and a live run waits for room (runs asked for do not)."""

from __future__ import annotations

import collections
import threading
import time
from multiprocessing import Pipe

from test_screens_svg import MACHINE
from waiting import wait_until, wait_until_async

from partui.profiles.records.config import RunConfig
from partui.profiles.records.events import RunFinished, RunStarted

TINY = RunConfig("gelu3", strategy="none", executor="inline", workers=1, batch=2, repeats=1)


def test_live_runs_wait_for_room_and_runs_asked_for_do_not():
    from partui.profiles.service.serving import EngineService

    room = threading.Event()
    events: collections.deque = collections.deque()
    service = EngineService(events.append, 0, room=room.is_set)
    serving = threading.Thread(target=service.serve, daemon=True)
    serving.start()

    def count(kind) -> int:
        return sum(isinstance(e, kind) for e in list(events))

    try:
        service.submit(TINY)  # asked for: it runs with no room
        wait_until(lambda: count(RunFinished) == 1, 60, message="the submitted run")
        service.set_live(TINY)
        time.sleep(0.3)  # a window for a live run that should not start
        assert count(RunStarted) == 1
        room.set()
        wait_until(lambda: count(RunFinished) >= 4, 60, message="live runs with room")
        room.clear()
        time.sleep(0.3)  # a run that found room just before may still start and end
        wait_until(lambda: count(RunStarted) == count(RunFinished), 60)
        started = count(RunStarted)
        time.sleep(0.3)  # then none starts
        assert count(RunStarted) == started
    finally:
        service.stop()
        serving.join(30)
    assert not serving.is_alive()


def test_the_child_sender_says_when_events_wait_unsent():
    """Nobody reads the pipe: once it is full, events gather in the sender and it has no
    room; read again, and the room comes back."""
    from partui.profiles.service.engine_child import ROOM_EVENTS, _Batcher

    reader, writer = Pipe(duplex=False)
    batcher = _Batcher(writer)
    try:
        assert batcher.room()
        for i in range(4 * ROOM_EVENTS):
            batcher.add(f"{i:08d}" * 128)  # distinct: pickle sends each one
        wait_until(lambda: not batcher.room(), 30, message="the sender never filled")
        got = [0]

        def read():
            while got[0] < 4 * ROOM_EVENTS:
                got[0] += len(reader.recv())

        drained = threading.Thread(target=read, daemon=True)
        drained.start()
        wait_until(batcher.room, 30, message="no room after reading")
        drained.join(30)
        assert got[0] == 4 * ROOM_EVENTS  # nothing lost on the way
    finally:
        batcher._done = True
        writer.close()
        reader.close()


async def test_the_reader_posts_the_next_batch_only_once_the_last_was_handled(tmp_path):
    """A live dashboard whose screen takes longer to handle a batch than the reader's
    period: at no moment do two batches wait to be handled."""
    from partui.profiles.service.engine import EngineThread
    from partui.tui.dashboard.app import PartuiApp
    from partui.tui.dashboard.messages import EngineEvents

    app = PartuiApp(
        snapshot_dir=tmp_path,
        config=TINY,
        live=True,
        engine_factory=EngineThread,
        machine=MACHINE,
    )
    posted, handled, most = [0], [0], [0]
    post, handle = app.post_message, app.handle_events

    def counting_post(message) -> bool:
        if isinstance(message, EngineEvents):
            posted[0] += 1
            most[0] = max(most[0], posted[0] - handled[0])
        return post(message)

    def slow_handle(events) -> None:
        time.sleep(0.5)  # a screen that is behind: longer than the reader's period
        handle(events)
        handled[0] += 1

    app.post_message = counting_post  # type: ignore[method-assign]
    app.handle_events = slow_handle  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)):
        await wait_until_async(lambda: handled[0] >= 4, 60, message="batches handled")
        seen = most[0]  # here: as the app is taken down, batches are let go unhandled
    assert seen == 1, seen
