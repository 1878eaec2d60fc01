/*  fs_test_paths - where the build put the binaries tests start, and where the sources are. */
#include "finestra.h"

const char *fs_test_bin_dir = FS_TEST_BIN_DIR;
const char *fs_test_source_dir = FS_TEST_SOURCE_DIR;
