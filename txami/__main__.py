"""``python -m txami``: the ``txami`` command line tool."""

from txami.cli import main

main()
