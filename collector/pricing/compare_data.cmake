# SPDX-License-Identifier: Apache-2.0
# ctest: the committed data files equal a fresh extraction by
# scripts/gen-pricing-data.js from @tgwf/co2 and iso-codes.
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${NODE} ${SCRIPT} --co2 ${CO2} --iso-codes ${ISO}
    --ember-years ${COMMITTED}/carbon/ember_years.csv
    --grid-out ${OUT}/grid_intensity.csv
    --currencies-out ${OUT}/currencies.csv
  RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "gen-pricing-data.js failed (${rc})")
endif()
foreach(pair "grid_intensity.csv;carbon/grid_intensity.csv"
             "currencies.csv;currencies.csv")
  list(GET pair 0 gen)
  list(GET pair 1 committed)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files
    ${OUT}/${gen} ${COMMITTED}/${committed} RESULT_VARIABLE diff)
  if(diff)
    message(FATAL_ERROR "data/${committed} differs from the extraction "
      "${OUT}/${gen}; regenerate it (docs/cost-carbon.md)")
  endif()
  message(STATUS "data/${committed} equals the extraction")
endforeach()
