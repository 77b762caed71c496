# rapport_embed_migrations(TARGET target FUNCTION name DIR dir)
#
# Embeds every DIR/NNNN_name.sql into a generated source added to TARGET that
# defines `const std::vector<rapport::Migration>& <FUNCTION>()`.
function(rapport_embed_migrations)
  cmake_parse_arguments(ARG "" "TARGET;FUNCTION;DIR" "" ${ARGN})
  file(GLOB files CONFIGURE_DEPENDS ${ARG_DIR}/*.sql)
  list(SORT files)
  set(body "")
  foreach(f IN LISTS files)
    get_filename_component(stem ${f} NAME_WE)
    string(REGEX MATCH "^([0-9]+)_(.*)$" ok ${stem})
    if(NOT ok)
      message(FATAL_ERROR "migration ${f} is not named NNNN_name.sql")
    endif()
    math(EXPR version "${CMAKE_MATCH_1}")
    set(name ${CMAKE_MATCH_2})
    file(READ ${f} sql)
    # Read here, at configure time: an edit of the file configures again
    # (else the build would go on embedding the text it read before).
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${f})
    string(APPEND body "      {${version}, \"${name}\", R\"rapportsql(${sql})rapportsql\"},\n")
  endforeach()
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${ARG_FUNCTION}.cc)
  file(CONFIGURE OUTPUT ${out} CONTENT
"// Generated from ${ARG_DIR} by rapport_embed_migrations; do not edit.
#include <vector>
#include \"common/mysql/migrations.h\"
namespace rapport {
const std::vector<Migration>& ${ARG_FUNCTION}() {
  static const auto* migrations = new std::vector<Migration>{
${body}  };
  return *migrations;
}
}  // namespace rapport
" @ONLY)
  target_sources(${ARG_TARGET} PRIVATE ${out})
endfunction()
