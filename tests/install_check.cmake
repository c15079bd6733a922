# Installs this build into a temporary prefix, builds examples/library against the installed
# package (find_package(bagnet-lens), bagnet::core and bagnet::vision) and runs its program on an
# official fixture: the package works for a user's project, not only inside this tree.
# Run by CTest: cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DCHECKPOINT=... -DIMAGE=... -P install_check.cmake
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR CHECKPOINT IMAGE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "install_check.cmake needs -D${var}=...")
  endif()
endforeach()

function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "failed (${code}): ${ARGN}\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
run_step(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
run_step(${CMAKE_COMMAND} -S "${SOURCE_DIR}/examples/library" -B "${WORK_DIR}/build"
         -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix")
run_step(${CMAKE_COMMAND} --build "${WORK_DIR}/build" -j2)
run_step("${WORK_DIR}/build/evidence_map" "${CHECKPOINT}" "${IMAGE}" "${WORK_DIR}/map.npy" 281 3)
if(NOT step_output MATCHES "2 classes, 27x27 patches of 9 px")
  message(FATAL_ERROR "unexpected output of evidence_map: ${step_output}")
endif()
if(NOT EXISTS "${WORK_DIR}/map.npy")
  message(FATAL_ERROR "evidence_map wrote no map")
endif()
# The bundled model as installed, with its own input spec, at its dense stride 1.
file(GLOB installed_models "${WORK_DIR}/prefix/share/bagnet-lens/models/*.pt")
list(GET installed_models 0 bundled)
run_step("${WORK_DIR}/build/dense_map" "${bundled}" "${SOURCE_DIR}/assets/examples/0004_shirt.png" "${WORK_DIR}/dense.npy" 6 1)
if(NOT step_output MATCHES "dense map 28x28, q 9, stride 1")
  message(FATAL_ERROR "unexpected output of dense_map: ${step_output}")
endif()
run_step("${WORK_DIR}/build/render_heatmap" "${bundled}" "${SOURCE_DIR}/assets/examples/0013_dress.png" "${WORK_DIR}/dress.png")
if(NOT step_output MATCHES "^class 3, colours clipped" OR NOT EXISTS "${WORK_DIR}/dress.png")
  message(FATAL_ERROR "unexpected output of render_heatmap: ${step_output}")
endif()
message(STATUS "installed package builds and runs: ${step_output}")
