"""Modbus meters: one poller per endpoint (a TCP host:port, or an RTU serial port driving an RS-485 bus).

Its meters are read one at a time over one connection, staggered across the interval; the scheduling,
availability, rollover and outbox guarantees are ``edge_agent.poller``'s, shared with the other protocols.
A reading is unavailable when the meter does not answer, answers with a Modbus exception, or answers with
a value that cannot be a cumulative total.
"""

from __future__ import annotations

import asyncio

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from anju.edge_agent.counters import rollover_max
from anju.edge_agent.errors import DecodeError
from anju.edge_agent.outbox import Outbox
from anju.edge_agent.poller import EndpointPoller, MeterState, PollerStats, PollOutcome
from anju.edge_agent.registers import RegisterMap, decode_total
from anju.edge_agent.site import MeterConfig
from anju_wire import Clock

__all__ = ["MeterState", "ModbusEndpointPoller", "PollOutcome", "PollerStats"]


class ModbusEndpointPoller(EndpointPoller):
    """Polls every meter behind one Modbus endpoint (TCP host:port, or an RTU serial port) into the outbox."""

    protocol = "modbus"

    def __init__(
        self,
        *,
        meters: list[MeterConfig],
        clock: Clock,
        outbox: Outbox,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        super().__init__(meters=meters, clock=clock, outbox=outbox)
        first = meters[0]
        if host is not None and (first.transport != "tcp" or (host, port) != (first.host, first.port)):
            raise ValueError("host/port given do not match the meters' endpoint")
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if first.transport == "rtu":
            assert first.serial_port is not None
            self._client = AsyncModbusSerialClient(
                first.serial_port, baudrate=first.baudrate, parity=first.parity, stopbits=first.stopbits,
                bytesize=first.bytesize, timeout=self._timeout, retries=0, reconnect_delay=0,
            )  # fmt: skip
        else:
            assert first.host is not None
            self._client = AsyncModbusTcpClient(
                first.host, port=first.port, timeout=self._timeout, retries=0, reconnect_delay=0
            )

    def _register_map(self, meter: MeterConfig) -> RegisterMap:
        return meter.load_map()

    def _maximum(self, meter: MeterConfig, register_map: RegisterMap) -> float | None:
        return rollover_max(register_map)

    def close(self) -> None:
        """Close the Modbus connection (``run`` does this on its way out)."""
        self._client.close()

    async def _read(self, state: MeterState) -> PollOutcome:
        m = state.register_map
        cfg = state.config
        try:
            if not self._client.connected and not await asyncio.wait_for(
                self._client.connect(), timeout=cfg.timeout_s
            ):
                self.stats.transport_errors += 1
                return PollOutcome(None, f"cannot connect to {self.name}")
            reader = (
                self._client.read_input_registers
                if m.function == "input"
                else self._client.read_holding_registers
            )
            rr = await asyncio.wait_for(
                reader(m.start, count=m.count, device_id=cfg.device_id), timeout=cfg.timeout_s * 2
            )
        except (ModbusException, OSError, TimeoutError) as err:
            self.stats.transport_errors += 1
            self._client.close()
            return PollOutcome(None, f"transport: {type(err).__name__}: {err}")
        if rr.isError():
            self.stats.device_errors += 1
            return PollOutcome(None, f"device exception response: code {getattr(rr, 'exception_code', '?')}")
        try:
            return PollOutcome(decode_total(m, list(rr.registers)))
        except DecodeError as err:
            self.stats.decode_errors += 1
            return PollOutcome(None, f"bad value: {err}")
