"""The CPU sampler: rates, per-worker CPU time, on-CPU ratio."""

import math
import threading
import time

from waiting import load_factor, wait_until

from partui.profiles.records.config import RunConfig
from partui.profiles.run.engine import Engine
from partui.profiles.run.sampler import CpuSampler, on_cpu_ratios


def test_on_cpu_ratio_by_hand():
    ratios = on_cpu_ratios({0: 1.0, 1: 2.0}, {0: 1.05, 1: 2.01}, [100.0, 40.0, 0.0])
    assert math.isclose(ratios[0], 0.5) and math.isclose(ratios[1], 0.25)
    assert math.isnan(ratios[2])  # no CPU reading and no work


def test_sampler_tells_a_spinning_thread_from_a_sleeping_one():
    tids, stop = {}, threading.Event()

    def spin(i):
        tids[i] = threading.get_native_id()
        while not stop.is_set():
            if i == 1:
                time.sleep(0.01)
            else:
                sum(range(1000))

    threads = [threading.Thread(target=spin, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    wait_until(lambda: len(tids) == 2, 5, interval=0.001)
    got = []
    with CpuSampler(tids, got.append, hz=20) as sampler:
        before = sampler.worker_cpu()
        # ~20 Hz: ten samples in about half a second (longer on a loaded machine)
        wait_until(lambda: len(got) >= 10, 1.0, message=lambda: f"{len(got)} samples")
        after = sampler.worker_cpu()
    stop.set()
    for t in threads:
        t.join()
    spun, slept = (after[i] - before[i] for i in (0, 1))
    # the GIL and a shared machine: loose bounds
    assert spun > 0.05 and slept < spun / 5
    assert all(s.sampler_cost_us > 0 for s in got)
    # the spinning thread is this process (the last sample's interval may be tiny: median)
    assert sorted(s.engine_cpu for s in got)[len(got) // 2] > 10


def test_runs_carry_samples_and_on_cpu_ratio_per_worker():
    with Engine() as engine:
        r = engine.run(RunConfig("conv2", kernel="loops", workers=2, batch=4, repeats=2, warmup=0))
        q = Engine(sample_hz=0).run(
            RunConfig("conv2", executor="inline", workers=1, batch=4, repeats=1, warmup=0)
        )
    assert len(r.on_cpu_ratio) == 2 and r.cpu_samples
    # two GIL-bound loop workers on one interpreter: together about one core's worth (less
    # on a machine whose cores other programs share)
    assert 0.2 / load_factor() < sum(r.on_cpu_ratio) < 1.6
    assert q.cpu_samples == [] and q.on_cpu_ratio == []
