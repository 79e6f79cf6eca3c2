/* libzip, loaded when the first wheel is opened (python/wheelzip.c: the
 * scan, METADATA, the files): it brings the shared libcrypto (zip
 * encryption), a third of the CLI's start-up faults, which the CLI
 * otherwise links statically for SHA-256 alone.  See lazylib.h. */
#include <zip.h>

#include "cmd/lazylib.h"

/* Each function as (return type, name, parameters, arguments). */
#define ZIP_FUNCS(X)                                                                                                   \
	X(const char *, zip_error_strerror, (zip_error_t * e), (e))                                                    \
	X(zip_int64_t, zip_error_to_data, (const zip_error_t *e, void *data, zip_uint64_t len), (e, data, len))        \
	X(int, zip_fclose, (zip_file_t * f), (f))                                                                      \
	X(const char *, zip_file_strerror, (zip_file_t * f), (f))                                                      \
	X(zip_file_t *, zip_fopen_index, (zip_t * z, zip_uint64_t index, zip_flags_t flags), (z, index, flags))        \
	X(zip_int64_t, zip_fread, (zip_file_t * f, void *buf, zip_uint64_t n), (f, buf, n))                            \
	X(int, zip_file_get_external_attributes,                                                                       \
	  (zip_t * z, zip_uint64_t index, zip_flags_t flags, zip_uint8_t * os, zip_uint32_t * attributes),             \
	  (z, index, flags, os, attributes))                                                                           \
	X(zip_int64_t, zip_get_num_entries, (zip_t * z, zip_flags_t flags), (z, flags))                                \
	X(zip_t *, zip_open_from_source, (zip_source_t * src, int flags, zip_error_t *e), (src, flags, e))             \
	X(zip_source_t *, zip_source_buffer_create, (const void *data, zip_uint64_t len, int freep, zip_error_t *e),   \
	  (data, len, freep, e))                                                                                       \
	X(zip_source_t *, zip_source_function_create, (zip_source_callback fn, void *ud, zip_error_t *e), (fn, ud, e)) \
	X(zip_int64_t, zip_source_seek_compute_offset,                                                                 \
	  (zip_uint64_t offset, zip_uint64_t length, void *data, zip_uint64_t data_length, zip_error_t *e),            \
	  (offset, length, data, data_length, e))                                                                      \
	X(int, zip_stat_index, (zip_t * z, zip_uint64_t index, zip_flags_t flags, zip_stat_t * st),                    \
	  (z, index, flags, st))                                                                                       \
	X(const char *, zip_strerror, (zip_t * z), (z))
#define ZIP_VOID_FUNCS(X)                                                      \
	X(void, zip_discard, (zip_t * z), (z))                                 \
	X(void, zip_error_fini, (zip_error_t * e), (e))                        \
	X(void, zip_error_init, (zip_error_t * e), (e))                        \
	X(void, zip_error_set, (zip_error_t * e, int ze, int se), (e, ze, se)) \
	X(void, zip_source_free, (zip_source_t * src), (src))                  \
	X(void, zip_stat_init, (zip_stat_t * st), (st))

enum { ZIP_FUNCS(UDFB_LAZY_ENUM) ZIP_VOID_FUNCS(UDFB_LAZY_ENUM) N_SYMS };
static const char *const names[] = { ZIP_FUNCS(UDFB_LAZY_NAME) ZIP_VOID_FUNCS(UDFB_LAZY_NAME) NULL };
static void *syms[N_SYMS];
static struct udfb_lazylib lazy_lib = { "libzip.so.4", names, syms, PTHREAD_ONCE_INIT };

ZIP_FUNCS(UDFB_LAZY_FORWARD)
ZIP_VOID_FUNCS(UDFB_LAZY_FORWARD_VOID)
