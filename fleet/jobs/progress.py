"""A running job's progress and heartbeat, written from a thread of its own."""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from fleet.base.models import ImportBatch, ReportJob, utcnow

log = logging.getLogger(__name__)

# Statuses of a batch a job is working on; progress is written only while the batch is in one of them.
RUNNING = ("validating", "importing")
# A running job writes its heartbeat this often (fleet.jobs.reaper fails a batch silent for long).
HEARTBEAT_SECONDS = 10.0


class ProgressWriter:
    """Keeps ImportBatch.progress current from a thread of its own with its own connection.

    The import writes in one transaction; a progress update from the importing thread could wait on
    that very transaction's locks (SQLite's single writer, PostgreSQL's row lock on the batch) and
    never return. So the pipeline's callback only records the latest step, and this thread writes it:
    if it has to wait, the import does not. An update only touches a batch still running, so a late
    write never undoes the final status."""

    def __init__(
        self, engine: sa.Engine, batch_id: int, *, interval: float = 0.5, heartbeat: float = HEARTBEAT_SECONDS,
        model: type[ImportBatch | ReportJob] = ImportBatch, running: tuple[str, ...] = RUNNING,
    ) -> None:
        # The same for a report job (model=ReportJob): any row with status, progress, message, heartbeat_at.
        self.model, self.running = model, running
        self.engine = engine
        self.batch_id = batch_id
        self.interval = interval
        self.heartbeat = heartbeat
        self._latest: tuple[str, int] | None = None
        self._written: tuple[str, int] | None = None
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-batch-{batch_id}", daemon=True)
        self._step: tuple[str, float] | None = None

    def __call__(self, step: str, fraction: float) -> None:
        self._latest = (step, max(0, min(100, int(fraction * 100))))
        if self._step is None or self._step[0] != step:
            self._log_step()
            self._step = (step, time.perf_counter())

    def _log_step(self) -> None:
        """One log line per finished step of the job, with how long it took."""
        if self._step is None:
            return
        step, started = self._step
        duration = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "batch %s: %s took %s ms", self.batch_id, step, duration,
            extra={"event": "job_step", "batch": self.batch_id, "step": step, "duration_ms": duration},
        )

    def __enter__(self) -> ProgressWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._log_step()
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        latest = self._latest
        due = time.monotonic() - self._beat >= self.heartbeat
        if (latest is None or latest == self._written) and not due:
            return
        values: dict[str, object] = {"heartbeat_at": utcnow()}
        if latest is not None:
            values.update(progress=latest[1], message=latest[0])
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.update(self.model)
                    .where(self.model.id == self.batch_id, self.model.status.in_(self.running))
                    .values(**values)
                )
        except OperationalError:
            # The database was busy (SQLite's writer lock held by the import): the next tick retries.
            log.debug("progress of batch %s not written this time", self.batch_id)
            return
        self._written = latest
        self._beat = time.monotonic()
