# Everyday verbs. `make dev` once, then edit/test in place (the editable install rebuilds).
PY ?= python

.PHONY: dev test bench bench-cuda cuda-resources info ci lint sanitize cuda-memcheck
dev:
	$(PY) -m pip install --no-build-isolation -Cbuild-dir=build -ve ".[test,data]"
test:
	$(PY) -m pytest
bench:
	$(PY) -m pytest bench/bench_gemm.py --benchmark-json=bench/gemm.json
	$(PY) bench/report.py bench/gemm.json
	for f in conv pool lstm attention optim train; do \
	  $(PY) -m pytest bench/bench_$$f.py --benchmark-json=bench/$$f.json && \
	  $(PY) bench/report.py bench/$$f.json torch || exit 1; done
bench-cuda:
	$(PY) -m pytest bench/bench_cuda_gemm.py --benchmark-json=bench/cuda_gemm.json
	$(PY) bench/report.py bench/cuda_gemm.json cublas
	$(PY) -m pytest bench/bench_cuda_pool.py --benchmark-json=bench/cuda_pool.json
	$(PY) bench/report.py bench/cuda_pool.json torch
	$(PY) bench/report.py bench/cuda_pool.json copy
	for f in conv lstm attention; do \
	  $(PY) -m pytest bench/bench_cuda_$$f.py --benchmark-json=bench/cuda_$$f.json && \
	  $(PY) bench/report.py bench/cuda_$$f.json torch; done
# registers, shared memory and spills of every CUDA kernel, per architecture (ptxas -v)
cuda-resources:
	for arch in 80 90; do for f in cuda/*/*.cu; do \
	  nvcc -std=c++17 -O3 --expt-relaxed-constexpr -arch=sm_$$arch -Icuda -Xptxas -v -c $$f \
	  -o /dev/null 2>&1 | grep -E "Compiling|registers|spill"; done; done
info:
	$(PY) -m ember info
ci:
	rm -rf /tmp/ember-ci && git clone -q . /tmp/ember-ci && cd /tmp/ember-ci && bash .ci/run
sanitize:
	bash .ci/sanitize
# The GPU tests under compute-sanitizer (needs a GPU; README's development section), with CuPy's
# memory pool off (EMBER_CUPY_POOL=0) so that every array's bounds are those of its own allocation.
cuda-memcheck:
	for tool in memcheck racecheck initcheck synccheck; do \
	  EMBER_CUPY_POOL=0 compute-sanitizer --tool $$tool --error-exitcode 1 \
	  $(PY) -m pytest -x -m cuda tests -q -k "not large and not example" || exit 1; done
lint:
	ruff check pylib tests bench
