# MySQL Connector/C++ 1.1 (Debian's libmysqlcppconn-dev) ships no CMake package:
# expose it as the imported target MySQL::Connector.
find_path(MYSQLCPPCONN_INCLUDE_DIR NAMES cppconn/driver.h REQUIRED)
find_library(MYSQLCPPCONN_LIBRARY NAMES mysqlcppconn REQUIRED)
add_library(MySQL::Connector UNKNOWN IMPORTED)
set_target_properties(MySQL::Connector PROPERTIES
  IMPORTED_LOCATION "${MYSQLCPPCONN_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${MYSQLCPPCONN_INCLUDE_DIR}")
