/*
 * pmem2_source.h -- libpmem2's data-source API, implemented by libpmem2_source
 * (pmem2-source, a Rust reimplementation of PMDK libpmem2 1.12.1's pmem2_source_* family).
 *
 * The prototypes and error codes are libpmem2's, so code written against <libpmem2.h> for
 * these functions compiles and runs unchanged. Differences from libpmem2, all on paths where
 * libpmem2 crashes or stays silent:
 *  - NULL pointer arguments return -EINVAL with a message instead of crashing;
 *    pmem2_source_delete(NULL) and pmem2_source_delete(&null_source) return 0;
 *  - every failure sets the calling thread's pmem2_errormsg(); success leaves it unchanged;
 *  - descriptors opened with O_PATH, or with access mode 3, are rejected by
 *    pmem2_source_from_fd with PMEM2_E_INVALID_FILE_HANDLE.
 *
 * A source keeps libpmem2's 40-byte struct pmem2_source layout in its first 40 bytes, so it
 * can be passed to libpmem2's own pmem2_map_new when both libraries are in one process.
 *
 * Link with -lpmem2_source (pkg-config: pmem2_source).
 */

#ifndef PMEM2_SOURCE_H
#define PMEM2_SOURCE_H 1

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes: exactly libpmem2's values (libpmem2/base.h). Functions return 0, one of
 * these, or -errno. */
#define PMEM2_E_UNKNOWN				(-100000)
#define PMEM2_E_NOSUPP				(-100001)
#define PMEM2_E_FILE_HANDLE_NOT_SET		(-100003)
#define PMEM2_E_INVALID_FILE_HANDLE		(-100004)
#define PMEM2_E_INVALID_FILE_TYPE		(-100005)
#define PMEM2_E_MAP_RANGE			(-100006)
#define PMEM2_E_MAPPING_EXISTS			(-100007)
#define PMEM2_E_GRANULARITY_NOT_SET		(-100008)
#define PMEM2_E_GRANULARITY_NOT_SUPPORTED	(-100009)
#define PMEM2_E_OFFSET_OUT_OF_RANGE		(-100010)
#define PMEM2_E_OFFSET_UNALIGNED		(-100011)
#define PMEM2_E_INVALID_ALIGNMENT_FORMAT	(-100012)
#define PMEM2_E_INVALID_ALIGNMENT_VALUE		(-100013)
#define PMEM2_E_INVALID_SIZE_FORMAT		(-100014)
#define PMEM2_E_LENGTH_UNALIGNED		(-100015)
#define PMEM2_E_MAPPING_NOT_FOUND		(-100016)
#define PMEM2_E_BUFFER_TOO_SMALL		(-100017)
#define PMEM2_E_SOURCE_EMPTY			(-100018)
#define PMEM2_E_INVALID_SHARING_VALUE		(-100019)
#define PMEM2_E_SRC_DEVDAX_PRIVATE		(-100020)
#define PMEM2_E_INVALID_ADDRESS_REQUEST_TYPE	(-100021)
#define PMEM2_E_ADDRESS_UNALIGNED		(-100022)
#define PMEM2_E_ADDRESS_NULL			(-100023)
#define PMEM2_E_DEEP_FLUSH_RANGE		(-100024)
#define PMEM2_E_INVALID_REGION_FORMAT		(-100025)
#define PMEM2_E_DAX_REGION_NOT_FOUND		(-100026)
#define PMEM2_E_INVALID_DEV_FORMAT		(-100027)
#define PMEM2_E_CANNOT_READ_BOUNDS		(-100028)
#define PMEM2_E_NO_BAD_BLOCK_FOUND		(-100029)
#define PMEM2_E_LENGTH_OUT_OF_RANGE		(-100030)
#define PMEM2_E_INVALID_PROT_FLAG		(-100031)
#define PMEM2_E_NO_ACCESS			(-100032)
#define PMEM2_E_VM_RESERVATION_NOT_EMPTY	(-100033)
#define PMEM2_E_MAP_EXISTS			(-100034)
#define PMEM2_E_FILE_DESCRIPTOR_NOT_SET		(-100035)
#define PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED	(-100036)
#define PMEM2_E_IO_FAIL				(-100037)

/* A data source; opaque. */
struct pmem2_source;

/*
 * Validates fd (open O_RDONLY or O_RDWR; a regular file or a Device DAX) and creates a
 * source that refers to it. *src is set to NULL first, so it is NULL after any failure.
 * The descriptor is neither duplicated nor closed: keep it open while the source is used.
 * Returns 0, PMEM2_E_INVALID_FILE_HANDLE, PMEM2_E_INVALID_FILE_TYPE, -ENOMEM, -errno, or
 * -EINVAL if src is NULL.
 */
int pmem2_source_from_fd(struct pmem2_source **src, int fd);

/* Creates a source of size bytes of anonymous memory (any size). 0, -ENOMEM, or -EINVAL if
 * src is NULL. */
int pmem2_source_from_anon(struct pmem2_source **src, size_t size);

/* Stores the source's descriptor in *fd. PMEM2_E_FILE_DESCRIPTOR_NOT_SET for an anonymous
 * source (*fd untouched); -EINVAL if src or fd is NULL. */
int pmem2_source_get_fd(const struct pmem2_source *src, int *fd);

/* Frees *src and sets it to NULL; always returns 0 (also for src == NULL or *src == NULL).
 * Does not close the descriptor. */
int pmem2_source_delete(struct pmem2_source **src);

/* The calling thread's last error message ("" before the first failure). The text stays
 * until the thread's next failing call. */
const char *pmem2_errormsg(void);

/* Prints "<format, printf-style>: <pmem2_errormsg()>\n" to stderr. */
void pmem2_perror(const char *format, ...)
#if defined(__GNUC__) || defined(__clang__)
	__attribute__((format(printf, 1, 2)))
#endif
	;

/*
 * pmem2-source extension: allocate sources with malloc_func and free them with free_func
 * instead of malloc and free. malloc_func must return memory aligned like malloc's, or NULL.
 * Only once, before the first source is allocated: afterwards (or on a second call) it
 * returns -EBUSY and changes nothing, so every source is freed by the allocator that made
 * it. Returns 0, or -EINVAL if either function is NULL (nothing changes).
 */
int pmem2_source_set_funcs(void *(*malloc_func)(size_t size), void (*free_func)(void *ptr));

#ifdef __cplusplus
}
#endif

#endif /* PMEM2_SOURCE_H */
