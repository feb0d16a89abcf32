# mnemo_module(NAME [DEPS ...] [PRIVATE_DEPS ...]): the library target mnemo_NAME built from
# NAME/src/*.cc, with NAME/include public and NAME/src private.
function(mnemo_module name)
  cmake_parse_arguments(ARG "" "" "DEPS;PRIVATE_DEPS" ${ARGN})
  file(GLOB _srcs CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/src/*.cc")
  add_library(mnemo_${name} STATIC ${_srcs})
  add_library(mnemo::${name} ALIAS mnemo_${name})
  target_include_directories(mnemo_${name}
    PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}/include"
    PRIVATE "${CMAKE_CURRENT_SOURCE_DIR}/src")
  target_link_libraries(mnemo_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  target_compile_options(mnemo_${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  mnemo_header_check(${name})
endfunction()

# Every public header must compile on its own: one generated translation unit per header, built as
# part of `all` in the object library mnemo_NAME_headers.
function(mnemo_header_check name)
  file(GLOB_RECURSE _headers CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/include/*.h")
  set(_tus)
  foreach(_h IN LISTS _headers)
    file(RELATIVE_PATH _rel "${CMAKE_CURRENT_SOURCE_DIR}/include" "${_h}")
    string(MAKE_C_IDENTIFIER "${_rel}" _id)
    set(_tu "${CMAKE_CURRENT_BINARY_DIR}/header_check/${_id}.cc")
    file(CONFIGURE OUTPUT "${_tu}" CONTENT "#include <${_rel}>\n")
    list(APPEND _tus "${_tu}")
  endforeach()
  if(_tus)
    add_library(mnemo_${name}_headers OBJECT ${_tus})
    target_link_libraries(mnemo_${name}_headers PRIVATE mnemo_${name})
  endif()
endfunction()
