"""The dashboard's first frame does not wait for numpy: the machine's BLAS is read after
it and the header names it when it is known, never "no BLAS found" before that."""

from __future__ import annotations

from partui.profiles.records.config import RunConfig
from partui.profiles.system.machine import MachineInfo, host_info
from partui.tui.dashboard.app import PartuiApp
from partui.tui.dashboard.widgets.header import machine_line


def test_header_says_blas_is_being_read_until_it_is_known():
    assert "BLAS: reading" in machine_line(MachineInfo(cpu_model="X"))
    assert "no BLAS found" in machine_line(MachineInfo(cpu_model="X", blas=[]))


async def test_the_blas_figures_arrive_after_the_first_frame(tmp_path):
    app = PartuiApp(snapshot_dir=tmp_path, config=RunConfig("pool1"), live_loop=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            if app.machine.blas is not None:
                break
            await pilot.pause(0.05)
        expected = host_info().with_blas().blas
        assert app.machine.blas == expected
        await pilot.pause()
        header = str(app.query_one("MachineHeader").render())
        if expected:
            assert expected[0]["internal_api"] in header
        assert "BLAS: reading" not in header
