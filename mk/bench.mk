# Benchmark (issue 6): ours vs. a naive baseline handler vs. the raw model, see docs/performance.md.
#   make bench            both cases (default model, XLM-R-base size), 1/4/16/64 users, 20 s a level
#   make bench QUICK=1    default case only, short levels (under 3 minutes once archives are cached)
#   make bench BENCH_ARGS="--variant bf16:handler.dtype=bfloat16 --profile 15"
QUICK ?=
BENCH_ARGS ?=

.PHONY: bench bench-test

bench: $(VENV)/.installed  ## side-by-side benchmark -> bench/results/<timestamp>/results.{json,md,png} (QUICK=1: short)
	$(PY) -m bench.run $(if $(QUICK),--quick) $(BENCH_ARGS)

bench-test: $(VENV)/.installed  ## the benchmark's unit tests (report, chart, client, baseline handler)
	$(PY) -m pytest -q tests/unit/test_bench_report.py tests/unit/test_bench_chart.py tests/unit/test_bench_parts.py tests/unit/test_bench_baseline.py
