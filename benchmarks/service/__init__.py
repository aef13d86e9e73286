"""``python -m benchmarks.service``: the generated services against bare FastAPI and FSFT.

One run generates the default and the every-module service from this checkout, starts each
as its image does (``omnistack serve``, production settings, JSON logs) beside two baselines
(bare FastAPI and the reference peer in ``benchmarks/peers/fsft``), and measures every row of
issue 20's goal table in interleaved rounds. ``benchmarks/README.md`` says how to read it.

Modules: :mod:`.services` builds the four targets (generation, migration, the peer's seed),
:mod:`.targets` starts and stops their processes, :mod:`.jwks` serves the Supabase keys over
HTTPS, :mod:`.database` creates databases and counts sessions, :mod:`.load` drives wrk,
:mod:`.rounds` runs the interleaved rounds, :mod:`.overhead` the in-process row,
:mod:`.machine` records the machine, and :mod:`.report` prints and writes the table.
"""
