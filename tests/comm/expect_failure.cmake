# Runs a program under mpirun that must fail: a non-zero exit within 30 s,
# with the failing rank's prefix and message.  -D MPIEXEC=... -D PROGRAM=...
# -D NP=... -D PREFIX=... -D MESSAGE=...
string(TIMESTAMP start "%s")
execute_process(COMMAND ${MPIEXEC} -np ${NP} --oversubscribe ${PROGRAM}
                TIMEOUT 30 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
message("mpirun returned '${rc}' after ${seconds} s\n${out}${err}")
if(rc STREQUAL "0" OR NOT rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "expected mpirun to exit non-zero within 30 s, got '${rc}'")
endif()
foreach(expected IN ITEMS "${PREFIX}" "${MESSAGE}")
  string(FIND "${out}${err}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "the output does not carry the failing rank's '${expected}'")
  endif()
endforeach()
