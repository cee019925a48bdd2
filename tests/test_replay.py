"""One timed repeat of a saved run: picking it (numbers, fastest / slowest / median), saying
it, the CPU samples beside it, the model's choice, and `partui show --repeat`."""

from __future__ import annotations

import json

import pytest
from replay_fixtures import GAP_MS, MS, T0, TIMES, replay_result, replay_snapshot

from partui.profiles.store.snapshot import save
from partui.tui.cli.main import main
from partui.tui.dashboard.charts.cpu import repeat_cpu
from partui.tui.dashboard.snapshots import model_from_snapshot
from partui.tui.text.repeat_pick import (
    RepeatPick,
    own_repeats,
    parse_repeat,
    samples_over,
)


def test_a_repeat_is_named_by_its_number_from_1_or_as_fastest_slowest_median():
    assert [parse_repeat(w, TIMES) for w in ("1", "5", "fastest", "SLOWEST", "median")] == [
        0,
        4,
        1,
        2,
        3,
    ]
    for word, reason in (("0", "has 5 timed repeats (1..5)"), ("6", "(1..5)"), ("x", "give")):
        with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
            parse_repeat(word, TIMES)
    with pytest.raises(ValueError, match="has no timed repeats"):
        parse_repeat("median", [])
    with pytest.raises(ValueError, match="give"):
        parse_repeat("٣", TIMES)  # a digit, but not one a person types for --repeat


def test_a_pick_says_which_repeat_its_time_and_the_median_in_words():
    assert RepeatPick(2, 2, tuple(TIMES)).words() == (
        "repeat 3 of 5, 15 ms (median 11), the slowest"
    )
    assert RepeatPick(2, 1, tuple(TIMES)).words().endswith("9 ms (median 11), the fastest")
    assert RepeatPick(2, 3, tuple(TIMES)).tag == "median"
    assert RepeatPick(2, 0, tuple(TIMES)).words() == "repeat 1 of 5, 12 ms (median 11)"
    tie = RepeatPick(1, 1, (5.0, 5.0, 7.0))  # the first of equal times is the fastest
    assert tie.tag == "median" and RepeatPick(1, 0, (5.0, 5.0, 7.0)).tag == "fastest"


def test_a_pooled_row_replays_only_the_repeats_its_spans_belong_to():
    r = replay_result()
    r.times_ms = [30.0, 31.0, *TIMES]  # an earlier run's repeats pooled in front
    times, starts = own_repeats(r)
    assert times == TIMES and len(starts) == len(TIMES)
    r.repeat_start_ns = []  # an old snapshot: no starts
    assert own_repeats(r) == ([30.0, 31.0, *TIMES], [])


def test_the_cpu_beside_a_repeat_is_the_runs_own_with_the_repeat_at_zero():
    r = replay_result()
    start = r.repeat_start_ns[2]  # repeat 3: 15 ms from 40 ms into the run
    over = samples_over(r.cpu_samples, start, TIMES[2])
    # samples every 10 ms, each covering the 10 ms before it: the one ending as the repeat
    # starts covers none of it
    assert [(s.t_ns - T0) // MS for s in over] == [50, 60]
    around = repeat_cpu(r.cpu_samples, start, TIMES[2])
    assert around.covering == 2 and around.sample_ms == 10.0
    xs = [x for seg in around.series.cores[0] for x, _ in seg]
    assert xs[0] == -30.0 and 0.0 in xs and xs[-1] == len(TIMES) * GAP_MS - 40
    assert around.start_ms == -40.0  # the first sample's window starts with the run
    assert repeat_cpu([], start, 1.0) is None


def test_the_model_of_a_snapshot_picks_the_median_then_steps_and_jumps(tmp_path):
    path = save(replay_snapshot(), tmp_path / "s.json")
    model = model_from_snapshot(path, 2)
    pick = model.repeat_pick()
    assert (pick.run, pick.repeat, pick.start_ns) == (2, 3, T0 + 3 * GAP_MS * MS)
    model.step_repeat(1)
    assert model.repeat_pick().repeat == 4 == model.timeline_view().repeat
    model.choose_repeat("fastest")
    assert model.repeat_pick().repeat == 1 == model.timeline_view().repeat
    model.select_run(1)  # another run: its own repeats, from its median
    pick = model.repeat_pick()
    assert (pick.run, pick.times_ms, pick.repeat) == (1, (20.0, 21.0, 19.0), 0)
    model.choose_repeat("slowest")
    assert model.repeat_pick().repeat == 1


def test_show_repeat_prints_that_repeats_timeline_and_figures(tmp_path, capsys):
    path = str(save(replay_snapshot(), tmp_path / "s.json"))
    assert main(["show", path, "--repeat", "3", "--run", "2"]) == 0
    out = capsys.readouterr().out
    assert "run 2  conv2 batch/vectorized/threads w=2 b=8" in out
    assert "repeat 3 of 5, 15 ms (median 11), the slowest" in out
    assert "rank 5 of 5" in out and "1.36x the run's median" in out
    assert "against the baseline (20 ms, the best 1-worker median): 1.33x" in out
    assert "run 2 · rep 3/5 · 15 ms" in out  # the timeline's head, then its lanes
    assert "CPU (mean of the 2 samples overlapping it): cpu0 55%  cpu1 50%  others 2%" in out
    assert ",/." not in out  # no dashboard key in print
    assert main(["show", path, "--repeat", "fastest"]) == 0
    out = capsys.readouterr().out
    assert "repeat 3 of 3, 19 ms (median 20), the fastest" in out  # run 1
    assert "repeat 2 of 5, 9 ms (median 11), the fastest" in out  # run 2


def test_show_repeat_as_json_holds_that_repeats_spans(tmp_path, capsys):
    snap = replay_snapshot()
    path = str(save(snap, tmp_path / "s.json"))
    assert main(["show", path, "--repeat", "median", "--run", "2", "--json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)["repeats"]
    assert (data["run"], data["repeat"], data["which"], data["wall_ms"]) == (2, 4, "median", 11.0)
    spans = [s for s in snap.runs[1].spans if s.repeat == 3]
    start = snap.runs[1].repeat_start_ns[3]
    assert [(d["worker"], d["start_ms"], d["end_ms"]) for d in data["spans"]] == [
        (s.worker, (s.start_ns - start) / MS, (s.end_ns - start) / MS) for s in spans
    ]
    assert [w["tasks"] for w in data["workers"]] == [1, 1]
    assert data["speedup"] == pytest.approx(20.0 / 11.0)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--repeat", "6", "--run", "2"], "--repeat 6: run 2 (conv2 "),
        (["--repeat", "4"], "w=1 b=8) has 3 timed repeats (1..3); run 2 has it (--run K)"),
        (["--repeat", "0"], "has 3 timed repeats (1..3)"),
        (["--repeat", "fast"], "--repeat fast: give a repeat number (1..) or one of fastest"),
        (["--repeat", "1", "--run", "3"], "--run 3: the snapshot has 2 runs (1..2)"),
        (["--run", "1"], "--run K goes with --repeat N"),
    ],
)
def test_show_repeat_out_of_range_is_one_line_and_exit_2(tmp_path, capsys, args, words):
    path = str(save(replay_snapshot(), tmp_path / "s.json"))
    assert main(["show", path, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_without_repeat_starts_no_cpu_is_given_for_a_repeat(tmp_path, capsys):
    snap = replay_snapshot()
    snap.runs[1].repeat_start_ns = []  # an older snapshot: the spans alone
    path = str(save(snap, tmp_path / "s.json"))
    assert main(["show", path, "--repeat", "2", "--run", "2", "--json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)["repeats"]
    assert data["cpu"] is None and data["wall_ms"] == 9.0 and len(data["spans"]) == 2
    assert model_from_snapshot(path, 2).repeat_pick().start_ns is None
    assert main(["show", path, "--repeat", "2", "--run", "2"]) == 0
    assert "CPU: this snapshot kept no repeat start times" in capsys.readouterr().out
