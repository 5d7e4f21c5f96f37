"""The Modbus meter server, read by a real pymodbus client over TCP."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Sequence

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from anju.device_sims.household import EstateModel
from anju.device_sims.meters import MeterServer, serve_meters
from anju.device_sims.registers import map_for_meter
from anju_wire import AcceleratedClock, MeterKind
from tests.device_sims.factories import START, small_estate


def _clock(speed: float = 3600.0) -> AcceleratedClock:
    """One simulated hour per wall second, starting at the estate's first midnight plus 5 hours."""
    return AcceleratedClock(origin_wall=time.time() - 5 * 3600 / speed, origin_sim=START, speed=speed)


def _total(words: Sequence[int], meter: MeterKind) -> float:
    reg_map = map_for_meter(meter)
    base = min(p.address for p in reg_map.total)
    total = 0.0
    for part in reg_map.total:
        regs = words[part.address - base: part.address - base + part.words]
        if part.word_order == "little":
            regs = list(regs)[::-1]
        fmt = {"float32": ">f", "uint32": ">I", "int32": ">i"}[part.type]
        total += struct.unpack(fmt, struct.pack(">HH", *regs))[0] * part.scale
    return total


def test_meters_answer_with_the_model_value_at_read_time() -> None:
    model = EstateModel(small_estate())
    clock = _clock()
    unit = model.spec.units[2]

    async def scenario() -> None:
        async with MeterServer(model, clock, host="127.0.0.1", port=0) as server:
            client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=2, retries=0)
            await client.connect()
            try:
                before = model.register_value(unit.unit_id, "electricity", clock.now())
                rr = await client.read_input_registers(342, count=2, device_id=unit.elec_device_id)
                after = model.register_value(unit.unit_id, "electricity", clock.now())
                assert not rr.isError()
                value = struct.unpack(">f", struct.pack(">HH", *rr.registers))[0]
                assert before - 1e-3 <= value <= after + 1e-3  # float32 keeps ~7 digits
                first = value
                await asyncio.sleep(0.3)  # 0.3 simulated hours later the register has moved on
                rr = await client.read_input_registers(342, count=2, device_id=unit.elec_device_id)
                assert struct.unpack(">f", struct.pack(">HH", *rr.registers))[0] > first

                for meter, device_id in ((MeterKind.WATER, unit.water_device_id),
                                         (MeterKind.GAS, unit.gas_device_id)):
                    reg_map = map_for_meter(meter)
                    base = min(p.address for p in reg_map.total)
                    count = max(p.address + p.words for p in reg_map.total) - base
                    expected = model.register_value(unit.unit_id, meter, clock.now())
                    rr = await client.read_holding_registers(base, count=count, device_id=device_id)
                    assert not rr.isError(), rr
                    assert _total(rr.registers, meter) == pytest.approx(expected, abs=0.02)

                # An SDM120 keeps its totals in input registers: FC03 there is an illegal address.
                rr = await client.read_holding_registers(342, count=2, device_id=unit.elec_device_id)
                assert rr.isError() and rr.exception_code == 2
            finally:
                client.close()

    asyncio.run(scenario())


def test_failing_silent_and_absent_devices() -> None:
    model = EstateModel(small_estate())
    failing, silent = model.spec.units[0], model.spec.units[1]

    async def scenario() -> None:
        server = MeterServer(model, _clock(), host="127.0.0.1", port=0,
                             silent={silent.elec_device_id}, failing={failing.elec_device_id})
        async with server:
            client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=0.5, retries=0)
            await client.connect()
            try:
                rr = await client.read_input_registers(342, count=2, device_id=failing.elec_device_id)
                assert rr.isError() and rr.exception_code == 4  # device failure: an answer, not a timeout
                rr = await client.read_input_registers(342, count=2, device_id=99)
                assert rr.isError() and rr.exception_code == 0x0B  # gateway: target did not respond
                with pytest.raises(ModbusIOException):
                    await client.read_input_registers(342, count=2, device_id=silent.elec_device_id)
                server.silent.clear()  # the meter comes back
                await client.connect()
                rr = await client.read_input_registers(342, count=2, device_id=silent.elec_device_id)
                assert not rr.isError()
            finally:
                client.close()

    asyncio.run(scenario())


def test_serve_meters_runs_until_cancelled() -> None:
    from anju.services import free_port

    model = EstateModel(small_estate())
    port = free_port()

    async def scenario() -> None:
        task = asyncio.create_task(serve_meters(model, _clock(), host="127.0.0.1", port=port))
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        try:
            for _ in range(50):
                if await client.connect():
                    break
                await asyncio.sleep(0.05)
            rr = await client.read_input_registers(342, count=2, device_id=1)
            assert not rr.isError()
        finally:
            client.close()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
