"""The command thread of partui's child processes (engine and training)."""

from __future__ import annotations

from multiprocessing import Pipe

from partui.profiles.service.commands import serve_commands


def test_commands_reach_their_handlers_until_stop():
    got, ended = [], []
    theirs, ours = Pipe(duplex=False)
    thread = serve_commands(theirs, {"run": got.append}, lambda: ended.append(1), "test-cmds")
    for cmd in [("run", 1), ("unknown", 2), ("run", 3), ("stop",), ("run", 4)]:
        ours.send(cmd)
    thread.join(5)
    assert not thread.is_alive() and got == [1, 3] and ended == [1]


def test_the_parent_gone_ends_the_thread_too():
    ended = []
    theirs, ours = Pipe(duplex=False)
    thread = serve_commands(theirs, {}, lambda: ended.append(1), "test-cmds")
    ours.close()
    thread.join(5)
    assert not thread.is_alive() and ended == [1]
