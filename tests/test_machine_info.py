"""MachineInfo: the typed record of `partui info` and a snapshot's `machine`, and the JSON it
reads and writes (the same keys as the plain dict it replaced)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partui.profiles.store.snapshot import Snapshot, load, save
from partui.profiles.system.machine import MachineInfo, host_info, info

# the keys `partui info --json` and snapshots have always written, in their order
HOST_KEYS = [
    "cpu_model",
    "logical_cores",
    "physical_cores",
    "usable_cores",
    "caches",
    "cache_line",
    "memory_total",
    "memory_available",
    "python",
    "platform",
    "hostname",
]
KEYS = HOST_KEYS + ["blas", "numpy"]

text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
count = st.none() | st.integers(0, 2**40)
cache = st.fixed_dictionaries(
    {"level": st.integers(1, 4), "type": st.sampled_from(["Data", "Unified"])},
    optional={"size": st.integers(0, 2**30), "line": st.integers(0, 256)},
)
blas_lib = st.fixed_dictionaries(
    {"internal_api": text, "version": st.none() | text, "num_threads": st.integers(1, 64)}
)
VALUES = {
    "cpu_model": st.none() | text,
    "logical_cores": count,
    "physical_cores": count,
    "usable_cores": count,
    "caches": st.lists(cache, max_size=4),
    "cache_line": count,
    "memory_total": count,
    "memory_available": count,
    "python": st.none() | text,
    "platform": st.none() | text,
    "hostname": st.none() | text,
    "blas": st.lists(blas_lib, max_size=2),
    "numpy": st.none() | text,
}
# a machine as some partui wrote it: any of the known keys, and keys a newer one may add
machines = st.fixed_dictionaries(
    {}, optional={**VALUES, "gpu": text, "numa_nodes": st.integers(0, 8)}
)


@settings(max_examples=60, deadline=None)
@given(machines)
def test_every_key_read_is_written_back_as_it_was(d):
    out = MachineInfo.from_dict(d).to_dict()
    assert {k: out.get(k) for k in d} == d  # (a null BLAS or numpy field: left out)
    # keys the file did not have come back empty; BLAS and numpy only once known
    assert set(HOST_KEYS) <= set(out) <= set(d) | set(HOST_KEYS)
    assert all(out[k] in (None, []) for k in set(out) - set(d))


@settings(max_examples=60, deadline=None)
@given(st.fixed_dictionaries({**VALUES, "numpy": text}))
def test_a_complete_record_is_the_same_json_both_ways(d):
    m = MachineInfo.from_dict(d)
    assert m.to_dict() == d and list(m.to_dict()) == KEYS
    assert MachineInfo.from_dict(m.to_dict()) == m and m.extra == {}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(machines)
def test_a_snapshot_keeps_its_machine_through_save_and_load(tmp_path, d):
    path = save(Snapshot(runs=[], machine=MachineInfo.from_dict(d)), tmp_path / "s.json", True)
    written = json.loads(path.read_text())["machine"]
    assert {k: written.get(k) for k in d} == d
    back = load(path)
    assert back.machine == MachineInfo.from_dict(d) and back.machine.to_dict() == written


def test_this_machine_writes_the_keys_it_always_wrote():
    here = info()
    assert list(here.to_dict()) == KEYS
    assert here.logical_cores and here.logical_cores >= 1 and isinstance(here.blas, list)
    host = host_info()  # no BLAS yet: the dashboard's first frame
    assert host.blas is None and host.numpy is None and list(host.to_dict()) == HOST_KEYS
    assert host.with_blas().blas == here.blas
    assert here.fingerprint() == f"{here.cpu_model} | {here.logical_cores} cpus | {here.hostname}"
