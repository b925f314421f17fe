"""`python -m tests.support.test_worker`: the worker with the tests' extra tools."""

import asyncio

from tests.support.extra_tools import TEST_TOOLS
from worker import main

if __name__ == "__main__":
    asyncio.run(main(TEST_TOOLS))
