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
endfunction()
