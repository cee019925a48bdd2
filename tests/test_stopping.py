"""The dashboard's stop watch: a stop signal or a hung-up terminal reaches the event loop
once, and the handlers it replaced come back."""

from __future__ import annotations

import asyncio
import os
import pty
import signal

from waiting import budget

from partui.tui.dashboard.stopping import StopWatch


async def _stopped_by(watch: StopWatch, seen: list, got: asyncio.Event) -> None:
    await asyncio.wait_for(got.wait(), budget(10))
    await asyncio.sleep(0.05)  # a second stop would come now
    assert watch.stopping == seen[0] and len(seen) == 1


async def test_a_terminal_that_hangs_up_counts_as_sighup():
    master, slave = pty.openpty()
    seen: list = []
    got = asyncio.Event()
    watch = StopWatch(lambda n: (seen.append(n), got.set()), slave, end_process=False)
    watch.install()
    try:
        assert not watch.terminal_gone()
        os.close(master)
        await _stopped_by(watch, seen, got)
        assert seen == [signal.SIGHUP]
    finally:
        watch.uninstall()
        os.close(slave)


async def test_a_stop_signal_reaches_the_loop_once_and_the_handlers_come_back():
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGHUP)}
    seen: list = []
    got = asyncio.Event()
    watch = StopWatch(lambda n: (seen.append(n), got.set()), None, end_process=False)
    watch.install()
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGHUP)  # the first one counts
        await _stopped_by(watch, seen, got)
        assert seen == [signal.SIGTERM]
    finally:
        watch.uninstall()
    assert {sig: signal.getsignal(sig) for sig in before} == before
