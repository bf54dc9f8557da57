"""Benchmarks (``make bench``): not part of ``make test``. Each ``bench_*.py`` has ``main()``."""
