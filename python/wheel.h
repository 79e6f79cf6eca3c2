/* Wheels (binary distribution format 1.x): file names, compatibility tags,
 * METADATA, and installing a wheel's files into a layer exactly where
 * `pip install --target T` puts them (pip's "home" scheme below T):
 *   purelib, platlib       -> T/
 *   scripts                -> T/bin/
 *   headers                -> T/include/python/<project name>/
 *   data                   -> T/
 * Everything here reads untrusted bytes from package indexes: every size
 * has a limit and no path may leave T. */
#ifndef UDFB_WHEEL_H
#define UDFB_WHEEL_H

#include <stddef.h>

#include "common/err.h"

#define UDFB_METADATA_MAX_BYTES (4u << 20)
#define UDFB_WHEEL_MAX_FILES 100000
#define UDFB_WHEEL_MAX_UNPACKED (4ll << 30) /* all files of one wheel */

/* {name}-{version}(-{build})?-{python tags}-{abi tags}-{platform tags}.whl;
 * each tag field may hold several tags joined by '.'.  Tags are lower-cased
 * (packaging compares them so); the name is checked as packaging does
 * ([A-Za-z0-9._], no "__"), the build tag starts with a digit. */
struct udfb_wheelname {
	char *name; /* PEP 503 normalised */
	char *version; /* PEP 440 normalised */
	char *build; /* "" when none */
	char **py, **abi, **plat;
	size_t n_py, n_abi, n_plat;
};

int udfb_wheelname_parse(struct udfb_wheelname *out, const char *filename, struct udfb_err *err);
void udfb_wheelname_free(struct udfb_wheelname *w);

/* The target interpreter and platform wheels must run on. */
struct udfb_pytarget {
	int py_major, py_minor; /* 3, 12 */
	int glibc_major, glibc_minor; /* 2, 36: manylinux levels up to this */
	const char *arch; /* "x86_64", "aarch64" */
};

/* The tags the target supports, most specific first, as pip orders them
 * for CPython on glibc Linux: cpXY-cpXY-<plat>, cpXY-abi3-<plat>,
 * cpXY-none-<plat>, cpXW-abi3-<plat> for W < Y, pyXY/py3/pyXW-none-<plat>,
 * cpXY-none-any, pyXY/py3/pyXW-none-any; <plat> runs manylinux_2_M_<arch>
 * from the glibc level down (with the legacy aliases manylinux2014,
 * manylinux2010, manylinux1 after their 2_17, 2_12, 2_5), then linux_<arch>. */
struct udfb_pytags;
int udfb_pytags_new(struct udfb_pytags **out, const struct udfb_pytarget *t, struct udfb_err *err);
void udfb_pytags_free(struct udfb_pytags *t);
/* Rank of a wheel: 0 for the best tag; -1 when no tag fits. */
int udfb_pytags_rank(const struct udfb_pytags *t, const struct udfb_wheelname *w);
/* "cp312-cp312-manylinux_2_36_x86_64, ..., py3-none-any (86 tags)" for
 * messages: the first few, the last, and the count.  malloc'd. */
char *udfb_pytags_describe(const struct udfb_pytags *t);

/* Core metadata (METADATA, PKG-INFO, PEP 658 .metadata files): RFC 822
 * style headers up to the first blank line, continuation lines joined. */
struct udfb_pkgmeta {
	char *name; /* as written */
	char *version; /* as written */
	char *requires_python; /* NULL when absent */
	char **requires_dist; /* as written, in order */
	size_t n_requires_dist;
	char **provides_extra;
	size_t n_provides_extra;
};

int udfb_pkgmeta_parse(struct udfb_pkgmeta *out, const char *text, size_t len, struct udfb_err *err);
void udfb_pkgmeta_free(struct udfb_pkgmeta *m);

/* The METADATA file of the wheel at path (from its single top-level
 * .dist-info directory), at most UDFB_METADATA_MAX_BYTES; *text is
 * NUL-terminated (not counted in *len), free() it.  path need not be named
 * like a wheel (a content cache names files by hash). */
int udfb_wheel_read_metadata(char **text, size_t *len, const char *path, struct udfb_err *err);

struct udfb_layer_writer;

struct udfb_membudget; /* common/arena.h */

struct udfb_wheel_install_opts {
	const char *target; /* in the layer, e.g. "app/packages" */
	const char *python; /* the command scripts run with: "/usr/bin/env python3" */
	const char *tmpdir; /* files are unpacked here until the layer is written */
	const char *installer; /* INSTALLER's content (one line), "udf-builder" */
	/* The most bytes the wheel's files may unpack to (what is left of a
	 * build's packages-max-unpacked); 0 for UDFB_WHEEL_MAX_UNPACKED. */
	long long max_unpacked;
	long long *unpacked; /* out, optional: the bytes the files unpacked to */
	/* CLOCK_MONOTONIC milliseconds past which unpacking stops (what is left
	 * of a build's packages-max-unpack-ms); 0: no limit. */
	long long deadline_ms;
	/* The most bytes (the wheel's size plus its files' declared sizes, plus
	 * what the layer writer holds in memory already for other wheels) for
	 * which the packs below are kept in memory instead of two files: 0 for
	 * UDFB_WHEEL_MEM_PACK_MAX, < 0 never. */
	long long mem_pack_max;
	/* The fewest bytes (the wheel's size plus its files' declared sizes)
	 * for which the packs are kept in memory: 0 for
	 * UDFB_WHEEL_MEM_PACK_MIN, < 0 any. */
	long long mem_pack_min;
	/* What all wheels' packs in memory may hold at once, across builds
	 * and threads (each is charged the wheel's size plus its files'
	 * declared sizes until its layer writer is freed): NULL for the
	 * process's own, UDFB_WHEEL_MEM_BUDGET.  Past it, files. */
	struct udfb_membudget *mem_budget;
};

/* Memory for one wheel's packs before files are used instead. */
#define UDFB_WHEEL_MEM_PACK_MAX (256ll << 20)
/* Smaller wheels use files: an arena reserves its limit plus 1 GiB of
 * address space and may take a whole 2 MiB huge page for a few bytes, so
 * a group layer of a hundred small wheels would hold hundreds of MiB;
 * files cost a small wheel little. */
#define UDFB_WHEEL_MEM_PACK_MIN (8ll << 20)
/* The process's budget for packs in memory: four wheels at the largest,
 * however many builds run at once (build-workers, prebuild -j). */
#define UDFB_WHEEL_MEM_BUDGET (1ll << 30)

/* Unpack the wheel at path into w under o->target, as described at the
 * top; <project name> is the name part of "<name>-<version>.dist-info"
 * (which the file name, when path is named like a wheel, must agree with).
 * Every file checked against the wheel's RECORD (sha256 and size), a
 * '#!python' shebang in scripts rewritten to o->python, console and GUI
 * scripts generated from entry_points.txt, INSTALLER written and RECORD
 * rewritten for the installed paths (relative to o->target, sorted); no
 * .pyc compiled, none copied (nor __pycache__).  Scripts are mode 0755,
 * other files 0755 when the zip gives them an executable bit.
 * Refused (UDFB_E_INVALID, naming the wheel and the entry): absolute
 * paths, '..' segments, symlinks and other non-regular entries, any path
 * that would land outside o->target, duplicate entries or destinations, a
 * path already in w, a missing or bad WHEEL/RECORD, Wheel-Version 2 or
 * later, bad entry_points.txt, and anything over the limits; then w is
 * left as it was.
 * The files' bytes, and the deflate streams the layer splices (each
 * checked to inflate to its file's bytes: image/layer.h,
 * udfb_layer_add_file_spliced), stay in memory that w owns from then on
 * (when they fit in o->mem_pack_max), else in two files in o->tmpdir
 * (removed on failure; kept on success): remove the directory only after
 * the layer is written.  The layer's bytes are the same either way. */
int udfb_wheel_install(struct udfb_layer_writer *w, const char *path, const struct udfb_wheel_install_opts *o,
		       struct udfb_err *err);

#endif
