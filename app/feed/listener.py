"""The MLLP listener (`navigator feed hl7`): frames in, ACKs out, one writer to the database.

Connections are served on an asyncio loop with the `hl7` package's MLLP streams. Every frame
goes onto one queue; a single writer thread takes whatever has queued (up to
`feed_batch_size`), applies it in arrival order inside one transaction and commits, and only
then are the ACKs written back. Arrival order is therefore the order of application, per
patient and overall. If the transaction fails, no ACK is sent and the connection is closed:
the sender resends, and the inbox's control ids make the resend harmless.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server

from app.clock import Clock
from app.db.session import Database
from app.feed.messages import ack
from app.feed.service import FeedProcessor, Outcome

logger = logging.getLogger(__name__)

# A frame may be this many times the message size limit before the connection is dropped
# (a larger message is still read whole, answered AR and kept as a dead letter).
STREAM_LIMIT_FACTOR = 16
MIN_STREAM_LIMIT = 16_000_000


class StorageFailedError(Exception):
    """The batch could not be committed: nothing of it is acknowledged."""


@dataclass
class _Pending:
    data: bytes
    done: asyncio.Future[Outcome]


class FeedListener:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.database = database
        self.clock = clock
        self.settings = database.settings
        self.processor = FeedProcessor(self.settings)
        self.batch_size = self.settings.feed_batch_size
        self.stream_limit = max(
            MIN_STREAM_LIMIT, self.settings.feed_max_message_bytes * STREAM_LIMIT_FACTOR
        )
        self._queue: asyncio.Queue[_Pending] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-writer")
        self._ack_ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self.port: int | None = None
        self.applied = 0

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
        try:
            while True:
                try:
                    data = await reader.readblock()
                except asyncio.IncompleteReadError:
                    return  # the sender closed (a partial frame is never acknowledged)
                except InvalidBlockError:
                    data = b""  # bytes outside a frame: answered AR below
                except ValueError:
                    logger.warning("feed: a frame over %d bytes; closing", self.stream_limit)
                    return
                pending = _Pending(data, loop.create_future())
                await self._queue.put(pending)
                try:
                    outcome = await pending.done
                except StorageFailedError:
                    return  # no ACK: the sender will resend on a new connection
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
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _write_loop(self) -> None:
        assert self._queue is not None  # noqa: S101
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await loop.run_in_executor(
                    self._executor, self._apply_batch, [item.data for item in batch]
                )
            except Exception as error:
                logger.error(
                    "feed: could not store %d message(s) (%s); none acknowledged",
                    len(batch),
                    type(error).__name__,
                )
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(StorageFailedError())
                continue
            for item, outcome in zip(batch, outcomes, strict=True):
                if not item.done.done():
                    item.done.set_result(outcome)

    def _apply_batch(self, frames: list[bytes]) -> list[Outcome]:
        """In the writer thread: one transaction for the batch, committed before any ACK."""
        try:
            with self.database.unit_of_work() as session:
                now = self.clock.now()
                outcomes = [self.processor.handle(session, data, now=now) for data in frames]
        except BaseException:
            self.processor.forget()
            raise
        self.applied += sum(1 for outcome in outcomes if outcome.ack_code == "AA")
        return outcomes


def run_listener(database: Database, clock: Clock, host: str, port: int) -> None:
    listener = FeedListener(database, clock)

    async def main() -> None:
        listener.install_signal_handlers()
        await listener.serve(host, port)

    asyncio.run(main())
