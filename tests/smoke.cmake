# End-to-end smoke runs of the CLI: plugin listing, validation, a tiny sweep under mpirun -n 2,
# its report, resume, and exit codes for bad input. Driven by tests/smoke.sh.
if(HAWQ_WITH_TORCH)
  find_program(MPIRUN_EXECUTABLE NAMES mpirun mpiexec)
  add_test(NAME cli_smoke
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/smoke.sh $<TARGET_FILE:hawq-bench> ${MPIRUN_EXECUTABLE}
                   ${CMAKE_CURRENT_BINARY_DIR}/smoke ${CMAKE_BINARY_DIR})
  set_tests_properties(cli_smoke PROPERTIES TIMEOUT 1500
                       ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;HAWQ_ROOT=${CMAKE_SOURCE_DIR}")
endif()
