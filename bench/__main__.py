"""``python -m bench``: run the benchmark (see bench/README.rst)."""

from bench.run import main

raise SystemExit(main())
