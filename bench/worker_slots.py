"""`python -m worker` with one setting changed: `python -m bench.worker_slots 500`.

Every streaming model round holds one of the worker's activity slots for the whole answer, so
`max_concurrent_activities` caps the turns one worker streams at once; turns beyond it wait for a
slot before their first token. `python -m bench --worker-activity-slots N` runs the stack with
this worker to show what the next limit is once that cap is raised.
"""

import asyncio
import sys

import temporalio.worker

import worker


def main(slots: int) -> None:
    class Worker(temporalio.worker.Worker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "max_concurrent_activities": slots})

    worker.Worker = Worker  # build_worker looks the class up at call time
    try:
        asyncio.run(worker.main())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(int(sys.argv[1]))
