"""The ingest service: MQTT shared subscriptions in, batched database writes, acks out after commit.

Three threads: paho's network loop only enqueues messages; the writer thread processes and batches them;
its flusher writes one batch at a time and then acknowledges it, while the writer processes the next
(Python work overlaps the database's, which releases the GIL). Nothing is acknowledged before it is
committed, so a database outage loses nothing: the batch is retried with backoff and the agents resend
whatever stays unacknowledged.

No message stops ingest: ``process`` turns any failure into a dead letter; a batch the database (or the
writer) refuses for anything but a lost connection is retried once, then split in halves down to the
one message that fails, which becomes a dead letter; and the writer thread runs under a supervisor that
restarts it with backoff. Its liveness, lag and last success feed ``/api/health`` and ``/metrics``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from anju.hub.ingest.errors import IngestError, WriterError
from anju.hub.ingest.processor import AckDue, DeadLetter, Message, ProcessResult, process
from anju.hub.ingest.writer import BatchWriter, FlushResult
from anju.hub.monitor import PartMonitor, by_estate, run_supervised
from anju_mqtt import BrokerUrlError, backoff_delays, close_client, make_client, parse_broker_url
from anju_wire import Ack, TimeBounds, Topic, TopicKind, encode
from anju_wire.payloads import ranges_of
from anju_wire.topics import subscription

# Errors that say the database is away or busy, not that a message is bad: retry the whole batch later,
# unacked. Anything else a write raises is blamed on the batch's messages and isolated by splitting.
TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError, WriterError)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestStats:
    """What the service has done since it started."""

    messages: int = 0
    stored_readings: int = 0
    stored_events: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    statuses: int = 0
    census_units_changed: int = 0  # units whose faces_enrolled a gateway's census changed
    census_units_skipped: int = 0  # units a census named that are not its estate's registered units
    acks_sent: int = 0
    flushes: int = 0
    flush_failures: int = 0
    shed: int = 0


def ack_payload(due: AckDue, *, now: datetime) -> bytes:
    """The wire bytes of the ack for ``due``."""
    return encode(
        Ack(agent_id=due.agent_id, estate_id=due.estate_id, ts=now, ranges=ranges_of(list(due.seqs)))
    )


class IngestService:
    """Consumes agent messages from MQTT and stores them; acknowledges only what is committed."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        share_group: str | None = "anju-hub",
        client_id: str = "anju-hub",
        batch_max: int = 5000,
        flush_s: float = 0.2,
        queue_max: int = 100_000,
        mqtt_username: str | None = None,
        mqtt_password: str | None = None,
        retry_cap_s: float = 10.0,
        bounds: TimeBounds | None = None,
        stale_after_s: float = 60.0,
    ) -> None:
        self._database_url = database_url
        try:
            broker = parse_broker_url(mqtt_url)
        except BrokerUrlError as err:
            raise IngestError(f"unsupported broker URL: {err}") from err
        if mqtt_username:  # the settings' credentials win over the URL's
            broker = replace(broker, username=mqtt_username, password=mqtt_password or broker.password)
        self._broker = broker
        self._share_group = share_group or None  # "" means the broker has no shared subscriptions
        self._batch_max = batch_max
        self._flush_s = flush_s
        self._retry_cap_s = retry_cap_s
        self._bounds = bounds or TimeBounds()
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=queue_max)
        self._stop = threading.Event()
        self._accepting = threading.Event()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._stats = IngestStats()
        self._shed_logged = False
        self._dead: dict[tuple[str, str], int] = {}  # (estate or "-", code) -> dead letters
        self._skipped: dict[str, int] = {}  # agent -> units its last census named that are not its estate's
        self._oldest_pending: datetime | None = None  # received_at of the oldest message being batched
        self._oldest_flushing: datetime | None = None  # ... and of the batch being written
        self._writer: BatchWriter | None = None  # used by the writer thread only
        self.writer_part = PartMonitor("ingest", stale_after_s=stale_after_s, lag=self._lag_s)
        self.broker_part = PartMonitor("broker", stale_after_s=float("inf"))
        self.broker_part.failure("not connected yet")
        self._thread = threading.Thread(
            target=run_supervised,
            kwargs={"loop": self._run, "part": self.writer_part, "stop": self._stop},
            name=f"anju-ingest-{client_id}",
            daemon=True,
        )
        # MQTT 5 for shared subscriptions; 3.1.1 where the broker (amqtt) has none.
        self._client = make_client(
            broker, client_id=client_id, protocol="5" if self._share_group else "3.1.1", reconnect=(1, 30)
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    def subscriptions(self) -> list[str]:
        """The topic filters this service subscribes to."""
        g = self._share_group
        # Status is retained, and MQTT 5 never sends retained messages to shared subscriptions; its upsert
        # is idempotent, so every hub may take every status message.
        return [
            subscription(TopicKind.READINGS, share_group=g),
            subscription(TopicKind.ACCESS, share_group=g),
            subscription(TopicKind.STATUS),
        ]

    def start(self) -> None:
        """Connect (in the background, retrying) and start the writer thread."""
        self._accepting.set()
        self._thread.start()
        self.broker_part.set_alive(True)
        self._client.connect_async(self._broker.host, self._broker.port, keepalive=30)
        self._client.loop_start()

    def parts(self) -> tuple[PartMonitor, PartMonitor]:
        """The writer thread's and the broker connection's liveness."""
        return self.writer_part, self.broker_part

    def queue_depth(self) -> int:
        """Messages received and not yet taken by the writer thread."""
        return self._queue.qsize()

    def dead_letters_by_estate(self) -> dict[str, dict[str, int]]:
        """Dead letters written since start, by the estate of their topic ("-" for none) and reason code."""
        with self._lock:
            return by_estate(self._dead)

    def _lag_s(self) -> float | None:
        """Seconds since the oldest message not yet committed was received (None when all are)."""
        oldest = (self._oldest_flushing, self._oldest_pending)
        with self._queue.mutex:  # peek: the queue's deque is ordered by arrival
            head = self._queue.queue[0].received_at if self._queue.queue else None
        stamps = [t for t in (*oldest, head) if t is not None]
        return (datetime.now(UTC) - min(stamps)).total_seconds() if stamps else None

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the subscriptions are in place; False on timeout."""
        return self._subscribed.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, flush what was taken, send its acks, then disconnect."""
        self._accepting.clear()
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        close_client(self._client)
        self.broker_part.set_alive(False)

    def stats(self) -> IngestStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats

    def stats_dict(self) -> dict[str, int]:
        """The counters as a plain mapping (for logs and the demo summary)."""
        return asdict(self.stats())

    # paho callbacks: run on paho's thread; keep them short.

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            self.broker_part.failure(f"broker refused the connection: {reason}")
            return
        log.info("connected to %s:%d", self._broker.host, self._broker.port)
        client.subscribe([(f, 1) for f in self.subscriptions()])

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("subscriptions refused: %s", ", ".join(failed))
            self.broker_part.failure(f"subscriptions refused: {', '.join(failed)}")
            return
        self._subscribed.set()
        self.broker_part.success()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._subscribed.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); paho reconnects", reason)
            self.broker_part.failure(f"disconnected from broker: {reason}")

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not self._accepting.is_set():
            return  # stopping: not stored, not acked; the agent sends it again
        try:
            self._queue.put_nowait(Message(msg.topic, bytes(msg.payload), datetime.now(UTC)))
        except queue.Full:
            # Unacked, so the agent resends later; blocking here would stall the network loop.
            self._count(shed=1)
            if not self._shed_logged:
                log.warning("ingest queue full (database slow or down): shedding unacked messages")
                self._shed_logged = True

    # writer thread

    def _count(self, **add: int) -> None:
        with self._lock:
            current = asdict(self._stats)
            for k, v in add.items():
                current[k] += v
            self._stats = IngestStats(**current)

    def _run(self) -> None:
        """The writer loop (run under ``run_supervised``): take, process, batch, flush, until stopped."""
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="anju-ingest-flush") as flusher:
                self._batch(flusher)
        finally:  # the flusher is done: nothing uses the connection any more
            self._oldest_pending = self._oldest_flushing = None
            self._close_writer()

    def _batch(self, flusher: ThreadPoolExecutor) -> None:
        """Take and process messages into batches; hand each to ``flusher``, one at a time, in order."""
        pending: list[tuple[Message, ProcessResult]] = []
        flushing: Future[None] | None = None
        rows = 0
        deadline = 0.0
        while True:
            self.writer_part.beat()
            stopping = self._stop.is_set()
            timeout = 0.0 if stopping else max(0.0, deadline - time.monotonic()) if pending else 0.1
            try:
                msg: Message | None = self._queue.get(timeout=timeout)
            except queue.Empty:
                msg = None
            if msg is not None:
                result = process(msg.topic, msg.payload, msg.received_at, bounds=self._bounds)
                if not pending:
                    deadline = time.monotonic() + self._flush_s
                    self._oldest_pending = msg.received_at
                pending.append((msg, result))
                rows += result.rows
                self._count(messages=1)
            full = rows >= self._batch_max
            if pending and (full or time.monotonic() >= deadline or (stopping and msg is None)):
                if flushing is not None:
                    flushing.result()  # the batch before is committed and acked (or its error raised here)
                self._oldest_flushing, self._oldest_pending = self._oldest_pending, None
                flushing = flusher.submit(self._flush, pending)
                pending, rows = [], 0
            if stopping and msg is None and not pending:
                if flushing is not None:
                    flushing.result()
                return

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.conn.close()
            self._writer = None

    def _connect(self) -> BatchWriter:
        conn = psycopg.connect(self._database_url, autocommit=True)
        try:
            return BatchWriter(conn)
        except BaseException:
            conn.close()
            raise

    def _flush(self, pending: Sequence[tuple[Message, ProcessResult]]) -> None:
        """Write ``pending`` until it is committed (or the service stops), sending acks as parts commit."""
        try:
            self._flush_until_committed(pending)
        finally:
            self._oldest_flushing = None

    def _flush_until_committed(self, pending: Sequence[tuple[Message, ProcessResult]]) -> None:
        delays = backoff_delays(cap=self._retry_cap_s)
        while True:
            try:
                if self._writer is None:
                    self._writer = self._connect()
                self._write_or_split(self._writer, pending, retry=True)
                self.writer_part.success()
                return
            except TRANSIENT as err:
                self._count(flush_failures=1)
                self.writer_part.failure(err)
                self._close_writer()
                if self._stop.is_set():
                    log.warning("stopping with %d unwritten messages (not acked): %s", len(pending), err)
                    return
                delay = next(delays)
                log.warning("flush failed, retrying in %.1fs (unacked): %s", delay, err)
                self._stop.wait(delay)

    def _write_or_split(
        self, writer: BatchWriter, pending: Sequence[tuple[Message, ProcessResult]], *, retry: bool
    ) -> None:
        """Write ``pending`` and ack it; when refused, retry once, then halve down to the bad message."""
        try:
            outcome = writer.write([r for _, r in pending])
        except TRANSIENT:
            raise
        except Exception as err:  # noqa: BLE001
            # Not a lost connection: something in these messages is refused (a NUL byte PostgreSQL cannot
            # store, a date whose partition cannot be made ...). Isolate it; keep everything else.
            if len(pending) == 1:
                self._dead_letter_one(writer, pending[0], err)
                return
            if retry:
                log.warning(
                    "batch of %d refused (%s: %s); retrying it once", len(pending), type(err).__name__, err
                )
                self._write_or_split(writer, pending, retry=False)
                return
            log.warning("batch of %d refused again; splitting it to find the message", len(pending))
            half = len(pending) // 2
            self._write_or_split(writer, pending[:half], retry=False)
            self._write_or_split(writer, pending[half:], retry=False)
            return
        self._publish(outcome)

    def _dead_letter_one(
        self, writer: BatchWriter, item: tuple[Message, ProcessResult], err: Exception
    ) -> None:
        """Store one refused message as a dead letter (and ack its seqs, as for any dead letter)."""
        msg, result = item
        log.warning("message on %s refused: %s: %s", msg.topic[:200], type(err).__name__, err)
        try:
            estate: str | None = Topic.parse(msg.topic).estate
        except ValueError:
            estate = None
        dead = DeadLetter(
            topic=msg.topic.replace("\x00", "\\x00")[:500],
            payload=msg.payload,
            reason=f"refused by the database: {type(err).__name__}: {err}".replace("\x00", "\\x00")[:500],
            received_at=msg.received_at,
            code="db_refused",
            estate_id=estate,
        )
        try:
            outcome = writer.write([ProcessResult(dead_letter=dead, ack=result.ack)])
        except TRANSIENT:
            raise
        except Exception as again:
            # Not even its dead letter can be stored: the fault is the database's (a missing column ...),
            # not the message's. Treat it as an outage: retry the batch later, unacked.
            raise WriterError(f"cannot store a dead letter: {type(again).__name__}: {again}") from again
        self._publish(outcome)

    def _publish(self, outcome: FlushResult) -> None:
        """Count a committed flush and acknowledge its sequence numbers (QoS 1)."""
        now = datetime.now(UTC)
        with self._lock:
            for d in outcome.dead:
                key = (d.estate_id or "-", d.code)
                self._dead[key] = self._dead.get(key, 0) + 1
        for estate, agent, skipped in outcome.census_skipped:
            if self._skipped.get(agent, 0) != skipped:  # logged when it changes, not at every status
                self._skipped[agent] = skipped
                log.warning("%s: census names %d unit(s) not registered to estate %s; skipped",
                            agent, skipped, estate)  # fmt: skip
        for due in outcome.acks:
            topic = str(Topic.ack(due.estate_id, due.agent_id))
            try:
                payload = ack_payload(due, now=now)
            except ValueError as err:  # pydantic's ValidationError: an ack the contract cannot carry
                # The rows are committed; an ack that cannot be built must not undo that or stop ingest.
                log.error("cannot build the ack to %s (%s); the agent will resend", topic, err)
                continue
            info = self._client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # paho keeps QoS 1 messages for the reconnect; and an unacked agent resends anyway.
                log.warning("ack to %s queued while disconnected (rc=%s)", topic, info.rc)
        self._count(
            stored_readings=outcome.stored_readings,
            stored_events=outcome.stored_events,
            duplicates=outcome.duplicates,
            dead_letters=outcome.dead_letters,
            statuses=outcome.statuses,
            census_units_changed=outcome.census_changed,
            census_units_skipped=sum(n for _, _, n in outcome.census_skipped),
            acks_sent=len(outcome.acks),
            flushes=1,
        )
