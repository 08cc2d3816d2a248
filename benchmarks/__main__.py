"""``python -m benchmarks NAME [options]``: run one benchmark (``benchmarks.harness.runner``)."""

from benchmarks.harness.runner import main

raise SystemExit(main())
