# report.quick: bench/compare --quick against this build's simdattn_bench, then a check that the
# report is complete: every section and shape table, numbers that parse and agree with each
# other, the plots (or the report saying they were skipped). tests/report/check_report.py says
# what exactly it checks. About half a minute on an idle 2-core machine.
#
# tests/ is configured before bench/ (see the top-level CMakeLists.txt), so `if(TARGET
# simdattn_bench)` would be false here even in a build that has the bench; SIMDATTN_BUILD_BENCH
# is what creates that target (bench/ fails to configure without Google Benchmark), so it is
# the guard. The generator expression below resolves once every directory is configured.
if(NOT SIMDATTN_BUILD_BENCH)
  return()
endif()

find_package(Python3 COMPONENTS Interpreter QUIET)
if(NOT Python3_EXECUTABLE)
  message(STATUS "simdattn: no Python 3 interpreter, report.quick (bench/compare) is not tested")
  return()
endif()

add_test(NAME report.quick
         COMMAND "${Python3_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/tests/report/check_report.py"
                 --compare "${PROJECT_SOURCE_DIR}/bench/compare"
                 --bench "$<TARGET_FILE:simdattn_bench>"
                 --work-dir "${CMAKE_CURRENT_BINARY_DIR}/report-quick")
# RUN_SERIAL: it times benchmarks, which other tests running beside it would slow down. The
# timeout allows for a busy machine: --quick aims at under 2 minutes on 2 idle cores.
set_tests_properties(report.quick PROPERTIES LABELS "report;bench;benchmark" TIMEOUT 900 RUN_SERIAL TRUE)

# peers.quick: every peer bench/peers/install put in .venv-peers/ (PyTorch, ONNX Runtime, OpenVINO,
# ggml) checked against simdattn's reference on extra small cases, then `bench/compare --quick` on
# three shapes with them, and the report read back (tests/peers/check_peers.py). Skipped, saying
# why, when no peer is installed. SIMDATTN_PEERS_PYTHON / SIMDATTN_GGML_PEER (CMake cache) point it
# at peers installed elsewhere. scripts/bench runs it with the other benchmark-labelled tests; alone:
# ctest --test-dir build -R peers.quick --output-on-failure
set(SIMDATTN_PEERS_PYTHON "" CACHE STRING "python with torch/onnxruntime/openvino for peers.quick (default: .venv-peers)")
set(SIMDATTN_GGML_PEER "" CACHE FILEPATH "simdattn_ggml_peer for peers.quick (default: .venv-peers/bin)")
set(peers_options "")
if(SIMDATTN_PEERS_PYTHON)
  list(APPEND peers_options --python "${SIMDATTN_PEERS_PYTHON}")
endif()
if(SIMDATTN_GGML_PEER)
  list(APPEND peers_options --ggml-peer "${SIMDATTN_GGML_PEER}")
endif()
add_test(NAME peers.quick
         COMMAND "${Python3_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/tests/peers/check_peers.py"
                 --compare "${PROJECT_SOURCE_DIR}/bench/compare"
                 --bench "$<TARGET_FILE:simdattn_bench>"
                 --work-dir "${CMAKE_CURRENT_BINARY_DIR}/peers-quick" ${peers_options})
set_tests_properties(peers.quick PROPERTIES LABELS "peers;bench;benchmark" TIMEOUT 1800 RUN_SERIAL TRUE SKIP_RETURN_CODE 77)
