"""Sweeps: a Session definition plus a search space, run as trials that workers claim from
the database (``sweep.run(workers=N)`` locally, ``ptdry worker NAME`` anywhere).
See ``docs/sweeps.md``."""
