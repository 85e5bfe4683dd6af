/*
 * pmem2_source.h included twice: the include guard must make the second inclusion empty
 * (the test preprocesses this file and counts the declarations).
 */
#include <pmem2_source.h>
#include <pmem2_source.h>
