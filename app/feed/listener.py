"""The MLLP listener (`navigator feed hl7`): frames in, ACKs out, one writer to the database.

Connections are served on an asyncio loop with the `hl7` package's MLLP streams. A
connection reads ahead: a sender may stream up to `feed_batch_size` frames before it waits
for their ACKs, which go back in the order the frames came. Every frame goes onto one queue;
a single writer thread takes whatever has queued (up to `feed_batch_size`), stores and
applies it in arrival order in one transaction (`app/feed/batch.py`) and commits, and only
then are the ACKs written back (group commit). Arrival order is therefore the order of
application, per patient and overall.

When the batch cannot be applied as a whole (a message that gets AE, or any error), it is
rolled back and its messages are applied again one per transaction, so the bad one gets its
AE and dead letter while the others commit. A message whose own transaction fails too is not
acknowledged: its connection is closed and nothing after it from that connection is applied
(the sender resends from it, and the inbox's control ids make the resend harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server

from app.clock import Clock
from app.db.session import Database, plan_each_statement_for_its_parameters
from app.feed.messages import ack
from app.feed.service import FeedProcessor, Outcome

logger = logging.getLogger(__name__)

# A frame may be this many times the message size limit before the connection is dropped
# (a larger message is still read whole, answered AR and kept as a dead letter).
STREAM_LIMIT_FACTOR = 16
MIN_STREAM_LIMIT = 16_000_000


class StorageFailedError(Exception):
    """The message could not be committed: it is not acknowledged."""


@dataclass
class Connection:
    # Set by the writer thread when a message of this connection could not be committed:
    # nothing after it from this connection is applied, and the connection is closed.
    broken: bool = False


@dataclass(frozen=True)
class Frame:
    data: bytes
    connection: Connection


@dataclass
class _Pending:
    frame: Frame
    done: asyncio.Future[Outcome]


_END = None  # on a connection's ACK queue: no more frames


class FeedListener:
    def __init__(
        self, database: Database, clock: Clock, processor: FeedProcessor | None = None
    ) -> None:
        self.database = database
        plan_each_statement_for_its_parameters(database.engine)
        self.clock = clock
        self.settings = database.settings
        self.processor = processor or FeedProcessor(self.settings)
        self.batch_size = self.settings.feed_batch_size
        self.read_ahead = self.settings.feed_batch_size
        self.stream_limit = max(
            MIN_STREAM_LIMIT, self.settings.feed_max_message_bytes * STREAM_LIMIT_FACTOR
        )
        self._queue: asyncio.Queue[_Pending] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-writer")
        self._ack_ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self.port: int | None = None
        self.applied = 0
        self.batches = 0  # transactions that applied a whole batch
        self.fallbacks = 0  # batches applied again one message per transaction

    async def serve(
        self, host: str, port: int, *, ready: Callable[[int], None] | None = None
    ) -> None:
        """Listen until `stop()` (or SIGTERM / SIGINT when run from the command line)."""
        self._queue = asyncio.Queue()
        writer_task = asyncio.create_task(self._write_loop())
        self._server = await start_hl7_server(
            self._serve_connection, host, port, limit=self.stream_limit
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("feed: listening for HL7 over MLLP on %s:%d", host, self.port)
        if ready is not None:
            ready(self.port)
        try:
            async with self._server:
                await self._server.serve_forever()
        except asyncio.CancelledError:
            pass
        finally:
            writer_task.cancel()
            self._executor.shutdown(wait=True)
            logger.info("feed: stopped")

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)

    async def _serve_connection(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        assert self._queue is not None  # noqa: S101 - serve() made it
        loop = asyncio.get_running_loop()
        connection = Connection()
        in_flight = asyncio.Semaphore(self.read_ahead)
        acks: asyncio.Queue[_Pending | None] = asyncio.Queue()
        acknowledging = asyncio.create_task(self._acknowledge(acks, in_flight, writer))
        try:
            while not connection.broken and not acknowledging.done():
                try:
                    data = await reader.readblock()
                except asyncio.IncompleteReadError:
                    break  # the sender closed (a partial frame is never acknowledged)
                except InvalidBlockError:
                    data = b""  # bytes outside a frame: answered AR
                except ValueError:
                    logger.warning("feed: a frame over %d bytes; closing", self.stream_limit)
                    break
                await in_flight.acquire()
                if connection.broken or acknowledging.done():
                    break
                pending = _Pending(Frame(data, connection), loop.create_future())
                acks.put_nowait(pending)
                await self._queue.put(pending)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            acks.put_nowait(_END)
            # The ACKs of frames already read still go back once they are committed.
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await acknowledging
            writer.close()

    async def _acknowledge(
        self,
        acks: asyncio.Queue[_Pending | None],
        in_flight: asyncio.Semaphore,
        writer: HL7StreamWriter,
    ) -> None:
        """Write each frame's ACK, in the order the frames came, once it is committed."""
        try:
            while (pending := await acks.get()) is not _END:
                try:
                    outcome = await pending.done
                except StorageFailedError:
                    writer.close()  # no ACK: the sender will resend on a new connection
                    return
                in_flight.release()
                writer.writeblock(
                    ack(
                        outcome.ack_code,
                        outcome.control_id,
                        text=outcome.text,
                        now=self.clock.now(),
                        ack_id=f"ACK{next(self._ack_ids)}",
                    )
                )
                await writer.drain()
        finally:
            in_flight.release()  # a reader waiting for room sees this task has ended

    async def _write_loop(self) -> None:
        assert self._queue is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            outcomes = await loop.run_in_executor(
                self._executor, self.apply_batch, [item.frame for item in batch]
            )
            for item, outcome in zip(batch, outcomes, strict=True):
                if item.done.done():
                    continue
                if outcome is None:
                    item.done.set_exception(StorageFailedError())
                else:
                    item.done.set_result(outcome)

    def apply_batch(self, frames: list[Frame]) -> list[Outcome | None]:
        """In the writer thread: the ACK for each frame, or None for one that was not
        committed. Nothing is acknowledged before the transaction holding it has committed."""
        live = [frame for frame in frames if not frame.connection.broken]
        together = self._commit_together(live) if live else None
        outcomes: dict[int, Outcome] = {}
        if together is not None:
            outcomes = {id(frame): outcome for frame, outcome in zip(live, together, strict=True)}
        else:
            for frame in live:
                if frame.connection.broken:
                    continue  # an earlier message of its connection was not committed
                outcome = self._commit_one(frame.data)
                if outcome is None:
                    frame.connection.broken = True
                else:
                    outcomes[id(frame)] = outcome
        self.applied += sum(1 for outcome in outcomes.values() if outcome.ack_code == "AA")
        return [outcomes.get(id(frame)) for frame in frames]

    def _commit_together(self, batch: list[Frame]) -> list[Outcome] | None:
        try:
            with self.database.unit_of_work() as session:
                outcomes = self.processor.handle_batch(
                    session, [frame.data for frame in batch], now=self.clock.now()
                )
        except Exception as error:
            self.processor.forget()
            self.fallbacks += 1
            logger.info(
                "feed: a batch of %d was rolled back (%s); applying one message at a time",
                len(batch),
                type(error).__name__,
            )
            return None
        self.batches += 1
        return outcomes

    def _commit_one(self, data: bytes) -> Outcome | None:
        try:
            with self.database.unit_of_work() as session:
                return self.processor.handle(session, data, now=self.clock.now())
        except Exception as error:
            self.processor.forget()
            logger.error(
                "feed: could not store a message (%s); not acknowledged", type(error).__name__
            )
            return None


def run_listener(database: Database, clock: Clock, host: str, port: int) -> None:
    listener = FeedListener(database, clock)

    async def main() -> None:
        listener.install_signal_handlers()
        await listener.serve(host, port)

    asyncio.run(main())
