"""``python -m ptdry …`` runs the ``ptdry`` command line."""

from ptdry.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
