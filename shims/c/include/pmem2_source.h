/*
 * pmem2_source.h -- libpmem2's data-source API, implemented by libpmem2_source
 * (pmem2-source, a Rust reimplementation of PMDK libpmem2 1.12.1's pmem2_source_* family).
 *
 * The prototypes and error codes are libpmem2's, so code written against <libpmem2.h> for
 * these functions compiles and runs unchanged. Differences from libpmem2, all on paths where
 * libpmem2 crashes or stays silent:
 *  - a NULL pointer argument that libpmem2 would dereference returns -EINVAL with a message
 *    instead of crashing; where libpmem2 returns an error before it would write through a
 *    NULL out-parameter (an anonymous source's NUMA node, device id or unsafe shutdown
 *    count, a file without NVDIMMs), that error is returned, in libpmem2's order;
 *    pmem2_source_delete(NULL) and pmem2_source_delete(&null_source) return 0;
 *  - a source whose type or file type field holds a value no constructor writes (a struct
 *    built or overwritten by hand) gets no answer: PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED or
 *    PMEM2_E_INVALID_FILE_TYPE (libpmem2 aborts, or takes it for a descriptor); size and the
 *    transfers still report a descriptor fstat refuses first, as libpmem2 does;
 *  - every failure sets the calling thread's pmem2_errormsg(); success leaves it unchanged;
 *  - descriptors opened with O_PATH, or with access mode 3, are rejected by
 *    pmem2_source_from_fd with PMEM2_E_INVALID_FILE_HANDLE;
 *  - a Device DAX's size and alignment come from sysfs (libpmem2 asks libndctl and crashes
 *    when no NVDIMM namespace backs the device);
 *  - a descriptor closed and its number reused for another file after the source was made
 *    is PMEM2_E_INVALID_FILE_HANDLE in pmem2_source_size, _pread_mcsafe and _pwrite_mcsafe
 *    (libpmem2 answers for the other file): a file with another device or inode number
 *    always; a new file that was given the old one's inode number (ext4 and XFS hand freed
 *    numbers out again) when it was born after the old file last changed, which takes a file
 *    system that records birth times (ext4, XFS, btrfs, tmpfs), and on kernels that stamp
 *    files from a coarse clock, a birth in a later clock tick (docs/reliability.md);
 *  - pmem2_source_pread_mcsafe/pwrite_mcsafe reject an offset beyond the end of the source
 *    with PMEM2_E_LENGTH_OUT_OF_RANGE (libpmem2 reads nothing, or writes past the end, and
 *    returns 0);
 *  - out-parameters are left untouched on failure (libpmem2 sets *usc to 0 first).
 *
 * A source keeps libpmem2's 40-byte struct pmem2_source layout in its first 40 bytes, so it
 * can be passed to libpmem2's own pmem2_map_new when both libraries are in one process.
 *
 * Link with -lpmem2_source (pkg-config: pmem2_source).
 */

#ifndef PMEM2_SOURCE_H
#define PMEM2_SOURCE_H 1

#include <stddef.h>
#include <stdint.h>
#ifdef _WIN32
#include <windows.h>
#endif

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
 * Windows: fd is a C runtime descriptor; its handle (_get_osfhandle) is validated as by
 * pmem2_source_from_handle. A negative or unknown (closed) fd is PMEM2_E_INVALID_FILE_HANDLE.
 */
int pmem2_source_from_fd(struct pmem2_source **src, int fd);

#ifdef _WIN32
/*
 * Validates a file handle (GetFileInformationByHandle; not a directory) and creates a source
 * that refers to it; the handle is neither duplicated nor closed. *src is NULL after any
 * failure. Returns 0; PMEM2_E_INVALID_FILE_HANDLE for INVALID_HANDLE_VALUE, a closed handle
 * or one that is not a file (a mutex, an event); PMEM2_E_INVALID_FILE_TYPE for a directory;
 * -errno or PMEM2_E_UNKNOWN for other Win32 errors; -ENOMEM; -EINVAL if src is NULL.
 */
int pmem2_source_from_handle(struct pmem2_source **src, HANDLE handle);

/* Stores the source's handle in *h. PMEM2_E_FILE_HANDLE_NOT_SET for an anonymous source
 * (*h untouched, also when h is NULL); -EINVAL if src is NULL, or h is NULL for a handle
 * source. */
int pmem2_source_get_handle(const struct pmem2_source *src, HANDLE *h);
#endif

/* Creates a source of size bytes of anonymous memory (any size). 0, -ENOMEM, or -EINVAL if
 * src is NULL. */
int pmem2_source_from_anon(struct pmem2_source **src, size_t size);

#ifndef _WIN32
/* Stores the source's descriptor in *fd. PMEM2_E_FILE_DESCRIPTOR_NOT_SET for an anonymous
 * source (*fd untouched, also when fd is NULL); -EINVAL if src is NULL, or fd is NULL for
 * a descriptor source. Not on Windows (libpmem2 has
 * pmem2_source_get_handle there). */
int pmem2_source_get_fd(const struct pmem2_source *src, int *fd);
#endif

/* Frees *src and sets it to NULL; always returns 0 (also for src == NULL or *src == NULL).
 * Does not close the descriptor. */
int pmem2_source_delete(struct pmem2_source **src);

/*
 * Stores the source's size in bytes in *size: anonymous, the size given; a regular file, its
 * current st_size; a Device DAX, its sysfs size. Returns 0, PMEM2_E_INVALID_FILE_HANDLE (the
 * descriptor was closed, or now refers to another file), PMEM2_E_INVALID_SIZE_FORMAT,
 * -errno, or -EINVAL if src is NULL, or size is NULL and there is a size to store. *size is
 * written only on success.
 */
int pmem2_source_size(const struct pmem2_source *src, size_t *size);

/*
 * Stores the alignment a mapping of the source needs in *alignment: the page size, or a
 * Device DAX's alignment (sysfs align, or dax_region/align). Returns 0,
 * PMEM2_E_INVALID_ALIGNMENT_FORMAT, PMEM2_E_INVALID_ALIGNMENT_VALUE (not a power of two),
 * -errno, or -EINVAL if src is NULL, or alignment is NULL and there is an alignment to store
 * (checked before the power of two, as libpmem2 stores first).
 */
int pmem2_source_alignment(const struct pmem2_source *src, size_t *alignment);

/*
 * Stores the NUMA node of the persistent memory behind the source in *numa_node (-1: no
 * affinity reported). PMEM2_E_DAX_REGION_NOT_FOUND when no NVDIMM region or Device DAX backs
 * it; PMEM2_E_NOSUPP for an anonymous source; -EINVAL if src is NULL, or numa_node is NULL
 * and there is a node to store.
 */
int pmem2_source_numa_node(const struct pmem2_source *src, int *numa_node);

/*
 * The ids of the NVDIMMs behind the source, concatenated. With id == NULL, stores the length
 * the id needs (NUL included) in *len; otherwise writes the id and a NUL to id if *len bytes
 * hold them (*len is not changed), else returns PMEM2_E_BUFFER_TOO_SMALL and writes nothing.
 * PMEM2_E_NOSUPP when no NVDIMM backs the source; -EINVAL if src is NULL, or len is NULL
 * once the NVDIMMs and their ids are found.
 */
int pmem2_source_device_id(const struct pmem2_source *src, char *id, size_t *len);

/*
 * Stores the unsafe shutdown count of the NVDIMMs behind the source (their sum) in *usc.
 * PMEM2_E_NOSUPP when no NVDIMM backs the source; -EINVAL if src is NULL, or usc is NULL
 * and the source is not anonymous (libpmem2 zeroes *usc before it looks for NVDIMMs). *usc
 * is written only on success.
 */
int pmem2_source_device_usc(const struct pmem2_source *src, uint64_t *usc);

/*
 * Reads size bytes at offset from the source into buf, reporting a bad block as
 * PMEM2_E_IO_FAIL instead of crashing. PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED for an anonymous
 * source; PMEM2_E_LENGTH_OUT_OF_RANGE if the range is not within the source; -errno;
 * -EINVAL if src is NULL, or buf is NULL, size is not 0 and the range is within the source.
 */
int pmem2_source_pread_mcsafe(struct pmem2_source *src, void *buf, size_t size,
	size_t offset);

/*
 * Writes size bytes from buf to the source at offset (buf is only read); the answers are
 * those of pmem2_source_pread_mcsafe. A Device DAX write is flushed from the CPU caches
 * before this returns.
 */
int pmem2_source_pwrite_mcsafe(struct pmem2_source *src, void *buf, size_t size,
	size_t offset);

/* The calling thread's last error message ("" before the first failure). The text stays
 * until the thread's next failing call; the pointer stays valid for the life of the thread,
 * and a pointer kept from an earlier call shows the thread's later failures too. The
 * thread's first call allocates its 1 KiB text buffer (freed when the thread exits); if that
 * allocation fails, the answer is a fixed message saying so, and the next call tries again.
 * Calls from pthread key destructors work: the buffer lasts through the first round of key
 * destructors in which the library's own runs, and is freed in the next; a call after that
 * returns a fixed message saying the text was freed (the pointer returned earlier is then no
 * longer valid). Once a thread has asked, the library stays loaded (dlclose leaves it).
 * When this library is loaded ahead of libpmem2 in one process (LD_PRELOAD, or linked
 * first), it hides libpmem2's pmem2_errormsg and pmem2_perror: then the message is that of
 * whichever library failed last on the thread (libpmem2's mapping functions included),
 * told by a change of libpmem2's text since ours last failed; a pointer kept from an earlier
 * call shows only this library's failures. */
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
 * A block not aligned for a source is passed back to free_func at once, and the creation
 * fails with -ENOMEM, its message naming the address returned and the alignment needed.
 * Only once, before the first source is allocated: afterwards (or on a second call) it
 * returns -EBUSY and changes nothing, so every source is freed by the allocator that made
 * it. Returns 0, or -EINVAL if either function is NULL (nothing changes).
 */
int pmem2_source_set_funcs(void *(*malloc_func)(size_t size), void (*free_func)(void *ptr));

#ifdef __cplusplus
}
#endif

#endif /* PMEM2_SOURCE_H */
