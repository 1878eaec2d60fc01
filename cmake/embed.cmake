# Embeds text files (SQL migrations, the default routing table) into the binaries,
# so a service needs no data files at run time: the image and the dev tree behave alike.
#
# finestra_embed(<outvar> [SQL_DIR dir SQL_NAME name] [FILES f...])
#   SQL_DIR: every NNN_name.sql in dir becomes fs_migration_t NAME_migrations[] (sorted).
#   FILES:   each file becomes `const char fs_file_<basename>[]`.
function(finestra_embed outvar)
  cmake_parse_arguments(E "" "SQL_DIR;SQL_NAME" "FILES" ${ARGN})
  set(out ${CMAKE_BINARY_DIR}/embedded/${outvar}.c)
  set(deps)
  if(E_SQL_DIR)
    file(GLOB sqls CONFIGURE_DEPENDS ${E_SQL_DIR}/*.sql)
    list(SORT sqls)
    list(APPEND deps ${sqls})
  endif()
  list(APPEND deps ${E_FILES})
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSQL_NAME=${E_SQL_NAME}
            "-DSQLS=${sqls}" "-DFILES=${E_FILES}"
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_gen.cmake
    DEPENDS ${deps} ${CMAKE_SOURCE_DIR}/cmake/embed_gen.cmake
    COMMENT "Embedding ${outvar}" VERBATIM)
  set(${outvar} ${out} PARENT_SCOPE)
endfunction()
