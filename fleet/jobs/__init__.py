"""Background work: validating and importing large uploads off the request, in a thread or on RQ workers.

The embedded default runs a job in a thread of the web process. With REDIS_URL set, jobs go to an RQ
queue, and workers on any machine sharing the database run them (`flask worker`, fleet/cli/worker.py,
which gives each job its app). Either way the batch's status and progress live in the database
(ImportBatch.status, .progress, .message), so any web process can show them.

launch: where a job runs; run: the job itself; progress: its progress and heartbeat; reaper: the
batches whose job died, found and failed off the request.
"""

from fleet.jobs.launch import launch_import, queue_for
from fleet.jobs.progress import HEARTBEAT_SECONDS, ProgressWriter
from fleet.jobs.reaper import (
    INTERRUPTED,
    STALLED_AFTER,
    fail_stalled,
    housekeeping,
    report_keep,
    start_reaper,
)
from fleet.jobs.run import RUNNING, UNFINISHED, run_import_job, temporary_copy

__all__ = [
    "HEARTBEAT_SECONDS", "INTERRUPTED", "RUNNING", "STALLED_AFTER", "UNFINISHED", "ProgressWriter",
    "fail_stalled", "housekeeping", "launch_import", "queue_for", "report_keep", "run_import_job", "start_reaper",
    "temporary_copy",
]
