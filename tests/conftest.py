import re
import signal

import pytest

# Markers (registered in pyproject.toml), applied here by file and by parameter so that a new
# test in these files is marked without a decorator. Single slow tests elsewhere carry
# @pytest.mark.slow themselves. The quick set (README):
#     -m "not slow and not tmux and not dask and not processes and not ui"
FILE_MARKS = {
    "test_e2e_tmux.py": ("tmux", "processes", "slow"),
    "test_dask.py": ("dask", "processes", "slow"),
    "test_scaling_dask.py": ("dask", "processes", "slow"),
    "test_train_tab_dask.py": ("dask", "processes", "ui", "slow"),
    "test_interrupt.py": ("processes", "slow"),
    "test_process_lifecycle.py": ("processes", "slow"),
    "test_signals_everywhere.py": ("processes", "slow"),
    "test_terminal_gone.py": ("processes", "ui", "slow"),
    "test_entry_points.py": ("processes",),
    "test_no_leftovers.py": ("processes",),
    "test_cli.py": ("processes",),
    "test_profiling_cli.py": ("processes",),
    "test_memlab_runner.py": ("processes",),
    "test_stream.py": ("processes",),
    "test_dashboard.py": ("ui",),
    "test_dashboard_tabs.py": ("ui",),
    "test_dashboard_truth.py": ("ui",),
    "test_dashboard_start.py": ("ui",),
    "test_layout_keys.py": ("ui",),
    "test_layout_screens.py": ("ui",),
    "test_screens_svg.py": ("ui",),
    "test_charts_svg.py": ("ui",),
    "test_chart_throttle.py": ("ui",),
    "test_train_tab.py": ("ui",),
    "test_lab_tab.py": ("ui",),
    "test_roofline_chart.py": ("ui",),
}
# single tests of several seconds each (a long run stopped, a training, the CLI many times,
# a live dashboard): by name, every parameter of it
SLOW_TESTS = {
    "test_backward.py::test_network_step_grads_match_reference",
    "test_bench_cli.py::test_bench_quick_json",
    "test_export.py::test_exporting_a_large_snapshot_takes_no_more_memory_than_reading_it",
    "test_tuning.py::test_the_autotune_writes_choices_and_alternatives_the_kernels_then_read",
    "test_dashboard.py::test_memory_lab_tab_runs_an_experiment_live_and_saves_it",
    "test_dashboard.py::test_browser_marks_two_snapshots_and_compares_them",
    "test_dashboard.py::test_lost_worker_process_is_reported_and_dashboard_keeps_working",
    "test_dashboard.py::test_live_mode_picks_up_changes_and_escape_cancels",
    "test_dashboard_truth.py::test_a_run_asked_for_reads_queued_then_running_then_idle",
    "test_layout_keys.py::test_redraws_and_resizes_never_move_the_layer",
    "test_layout_keys.py::test_down_reaches_network_under_pipeline",
    "test_machine_info.py::test_every_key_read_is_written_back_as_it_was",
    "test_no_leftovers.py::test_ctrl_c_stops_a_pipeline",
    "test_no_leftovers.py::test_ctrl_c_stops_the_workers",
    "test_no_leftovers.py::test_cancel_stops_a_run_and_the_engine_runs_on",
    "test_no_leftovers.py::test_helpers_exit_with_the_interpreter",
    "test_no_leftovers.py::test_runs_leave_nothing_behind",
    "test_passes.py::test_a_step_in_three_phases_or_in_one_gives_the_reference",
    "test_passes.py::test_processes_share_the_gradients",
    "test_profiling_cli.py::test_show_export_compare",
    "test_roofline.py::test_a_quick_measurement_gives_every_roof",
    "test_roofline.py::test_roofline_json",
    "test_profiling_cli.py::test_sweep_show_compare_as_json",
    "test_profiling_cli.py::test_sweep_prints_table_progress_and_saves",
    "test_stream.py::test_cancel_stops_a_long_run_within_200ms",
    "test_stream.py::test_spans_stream_while_the_run_works",
    "test_stream.py::test_process_child_never_imports_textual_and_close_leaves_no_process",
    "test_stream.py::test_lost_worker_process_is_a_failed_run_and_the_child_keeps_serving",
    "test_train.py::test_processes_share_the_weights",
    "test_train.py::test_cli_train_stopped_by_a_signal_saves_and_exits_128_plus_it",
    "test_train_tab.py::test_keys_change_the_settings",
    "test_train_tab.py::test_two_runs_overlaid_then_saved",
    "test_train_tab.py::test_stop_key_ends_a_run_and_a_change_applies_at_the_next_epoch",
    "test_lab_tab.py::test_lab_tab_lists_groups_and_runs_ilp_live",
}
# a parameter naming one of these (test_x[conv2-batch-vectorized-processes]) marks the test
PARAM_MARKS = {
    "loops": ("slow",),  # the per-pixel loops of the material: seconds a combination
    "region": ("slow",),  # native-region: its parallel kernels compile for tens of seconds
    "dask": ("dask", "processes"),
    "processes": ("processes",),
    "process": ("processes",),
}
# fixtures that start processes: the CLI in a subprocess, an engine process
FIXTURE_MARKS = {"engine_process": ("processes",)}


def pytest_configure(config):
    """Ctrl+C and hang-ups as a terminal gives them. A shell starts a background job (`cmd
    &`) with SIGINT ignored, nohup ignores SIGHUP, and an ignored signal stays ignored in
    every child: partui would never see the tests' Ctrl+C or SIGHUP (nor this process
    _thread.interrupt_main). A handler here is reset to the default in each child at exec;
    this process still shrugs off a hang-up, as nohup asked."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


# The files whose tests take longest in all, or hold one test of many seconds, first; the
# rest in their usual order after them. Under -n 2 (README) the files go out to the workers
# in this order: started last, one of these would leave the other worker idle at the end.
LONGEST_FIRST = (
    "test_combinations.py",
    "test_process_lifecycle.py",
    "test_dask.py",
    "test_passes.py",
    "test_dashboard.py",
    "test_train.py",
    "test_bench_cli.py",
    "test_e2e_tmux.py",
    "test_train_tab_dask.py",
    "test_cli.py",
    "test_profiling_cli.py",
    "test_stream.py",
    "test_memlab_runner.py",
    "test_layout_keys.py",
    "test_export.py",
    "test_backward.py",
    "test_scaling_dask.py",
)


def _file_rank(item) -> int:
    name = item.path.name
    return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_file_rank)  # stable: tests keep their order within a file
    for item in items:
        marks = set(FILE_MARKS.get(item.path.name, ()))
        if f"{item.path.name}::{item.originalname}" in SLOW_TESTS:
            marks.add("slow")
        params = re.search(r"\[(.*)\]$", item.name)
        for value in re.split(r"[-,]", params.group(1)) if params else ():
            marks.update(PARAM_MARKS.get(value, ()))
        for name in getattr(item, "fixturenames", ()):
            marks.update(FIXTURE_MARKS.get(name, ()))
        for mark in sorted(marks):
            item.add_marker(mark)


@pytest.fixture(autouse=True)
def _private_data_dirs(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's snapshots or baseline book."""
    data = tmp_path_factory.mktemp("partui-data")
    monkeypatch.setenv("PARTUI_SNAPSHOT_DIR", str(data / "snapshots"))
    monkeypatch.setenv("PARTUI_BASELINE_BOOK", str(data / "baselines.json"))
    monkeypatch.setenv("PARTUI_ROOFS", str(data / "roofs.json"))
    # the kernels' rules, not a tuning of this CPU: the autotune has its own tests
    monkeypatch.setenv("PARTUI_AUTOTUNE", "0")


IN_PROCESS_SERVICES = ("partui-engine", "partui-train", "partui-lab")


@pytest.fixture(autouse=True)
def _engine_threads_end_with_their_test():
    """An in-process engine, training or lab (their Thread services) whose work outlived its
    dashboard's close (a cold compile of the training kernels, say) would go on beside the
    next test, on the same interpreter lock: wait for it here."""
    yield
    import threading
    import time

    from waiting import budget

    deadline = time.monotonic() + budget(30)
    for thread in threading.enumerate():
        if thread.name in IN_PROCESS_SERVICES and thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()))


@pytest.fixture(scope="session")
def saved_snapshot(tmp_path_factory):
    """A real snapshot file (two small runs with spans, CPU samples and a baseline); read only."""
    from partui.profiles.records.config import RunConfig
    from partui.profiles.run.engine import Engine
    from partui.profiles.store.analysis import analyze
    from partui.profiles.store.snapshot import Snapshot, save

    with Engine() as engine:
        results = [engine.run(RunConfig("conv2", workers=w, batch=4, repeats=3)) for w in (1, 2)]
    analysis = analyze(results, {}, "this sweep")
    snap = Snapshot.from_results(
        results,
        note="a real snapshot",
        baseline=dict(analysis.baselines),
    )
    return save(snap, tmp_path_factory.mktemp("snapshot") / "real.json")
