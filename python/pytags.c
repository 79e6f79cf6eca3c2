/* The compatibility tags of a CPython target on glibc Linux, in the order
 * packaging.tags.sys_tags() yields them (pip ranks wheels by it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/strmap.h"
#include "python/wheel.h"

#define PYTAGS_DESCRIBE_FIRST 3

/* A tag is (py, abi, plat); each part has an id in its own map, and the
 * rank of a triple is one table lookup, so ranking thousands of files
 * costs no string building. */
struct udfb_pytags {
	char **tags; /* "cp312-cp312-manylinux_2_36_x86_64", in order */
	size_t n_tags;
	char **parts[3]; /* py, abi, plat names by id */
	size_t n_parts[3];
	struct udfb_strmap ids[3];
	int *rank; /* [py][abi][plat] -> index in tags, or -1 */
};

static size_t part_id(struct udfb_pytags *t, int kind, const char *s)
{
	size_t id;
	if (udfb_strmap_get(&t->ids[kind], s, &id))
		return id;
	char ***v = &t->parts[kind];
	*v = udfb_realloc(*v, (t->n_parts[kind] + 1) * sizeof(**v));
	id = t->n_parts[kind]++;
	(*v)[id] = udfb_strdup(s);
	udfb_strmap_put(&t->ids[kind], (*v)[id], id);
	return id;
}

/* First pass collects the parts; the second (with t->rank set) fills it. */
static void add(struct udfb_pytags *t, const char *py, const char *abi, const char *plat)
{
	size_t a = part_id(t, 0, py), b = part_id(t, 1, abi), c = part_id(t, 2, plat);
	if (t->rank) {
		int *r = &t->rank[(a * t->n_parts[1] + b) * t->n_parts[2] + c];
		if (*r < 0)
			*r = (int)t->n_tags;
	}
	t->tags = udfb_realloc(t->tags, (t->n_tags + 1) * sizeof(*t->tags));
	t->tags[t->n_tags++] = udfb_asprintf("%s-%s-%s", py, abi, plat);
}

/* packaging's _manylinux.platform_tags, then linux_<arch>: manylinux_2_M
 * from the target's glibc down to 2_17 (2_5 on x86), the legacy names
 * after the level they alias.  Architectures without manylinux wheels get
 * linux_<arch> alone. */
static size_t platforms(char ***out, const struct udfb_pytarget *tg)
{
	static const char *const manylinux_arches[] = { "x86_64", "i686",   "aarch64",	   "ppc64",   "ppc64le",
							"s390x",  "armv7l", "loongarch64", "riscv64", NULL };
	int x86 = strcmp(tg->arch, "x86_64") == 0 || strcmp(tg->arch, "i686") == 0;
	int manylinux = 0;
	for (int k = 0; manylinux_arches[k]; k++)
		manylinux |= strcmp(tg->arch, manylinux_arches[k]) == 0;
	char **v = udfb_calloc((size_t)tg->glibc_minor + 8, sizeof(*v));
	size_t n = 0;
	for (int m = tg->glibc_minor; manylinux && m >= (x86 ? 5 : 17); m--) {
		v[n++] = udfb_asprintf("manylinux_2_%d_%s", m, tg->arch);
		const char *legacy = m == 17   ? "manylinux2014"
				     : m == 12 ? "manylinux2010"
				     : m == 5  ? "manylinux1"
					       : NULL;
		if (legacy)
			v[n++] = udfb_asprintf("%s_%s", legacy, tg->arch);
	}
	v[n++] = udfb_asprintf("linux_%s", tg->arch);
	*out = v;
	return n;
}

/* cpython_tags() then compatible_tags() of packaging.tags. */
static void generate(struct udfb_pytags *t, const struct udfb_pytarget *tg, char **plats, size_t n_plats)
{
	int minor = tg->py_minor;
	char cp[16], abi[16];
	snprintf(cp, sizeof(cp), "cp3%d", minor);
	/* Before 3.8 the default build's ABI carried pymalloc's 'm'. */
	snprintf(abi, sizeof(abi), "cp3%d%s", minor, minor < 8 ? "m" : "");
	for (size_t p = 0; p < n_plats; p++)
		add(t, cp, abi, plats[p]);
	for (size_t p = 0; minor >= 2 && p < n_plats; p++) /* abi3 starts at 3.2 */
		add(t, cp, "abi3", plats[p]);
	for (size_t p = 0; p < n_plats; p++)
		add(t, cp, "none", plats[p]);
	for (int m = minor - 1; m >= 2; m--) {
		char old[16];
		snprintf(old, sizeof(old), "cp3%d", m);
		for (size_t p = 0; p < n_plats; p++)
			add(t, old, "abi3", plats[p]);
	}
	/* _py_interpreter_range: py3Y, py3, py3(Y-1) ... py30. */
	char py[128][16]; /* minor <= 99 (target_ok) */
	size_t n_py = 0;
	snprintf(py[n_py++], sizeof(py[0]), "py3%d", minor);
	snprintf(py[n_py++], sizeof(py[0]), "py3");
	for (int m = minor - 1; m >= 0; m--)
		snprintf(py[n_py++], sizeof(py[0]), "py3%d", m);
	for (size_t k = 0; k < n_py; k++)
		for (size_t p = 0; p < n_plats; p++)
			add(t, py[k], "none", plats[p]);
	add(t, cp, "none", "any");
	for (size_t k = 0; k < n_py; k++)
		add(t, py[k], "none", "any");
}

static int target_ok(const struct udfb_pytarget *tg)
{
	if (tg->py_major != 3 || tg->py_minor < 0 || tg->py_minor > 99 || tg->glibc_major != 2 || tg->glibc_minor < 0 ||
	    tg->glibc_minor > 999 || !tg->arch || !tg->arch[0] || strlen(tg->arch) > 32)
		return 0;
	for (const char *c = tg->arch; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return 0;
	return 1;
}

static void clear_tags(struct udfb_pytags *t)
{
	for (size_t k = 0; k < t->n_tags; k++)
		free(t->tags[k]);
	free(t->tags);
	t->tags = NULL;
	t->n_tags = 0;
}

int udfb_pytags_new(struct udfb_pytags **out, const struct udfb_pytarget *tg, struct udfb_err *err)
{
	if (!target_ok(tg))
		return udfb_err_set(
			err, UDFB_E_UNSUPPORTED,
			"python target %d.%d on glibc %d.%d (%.32s): only CPython 3 on glibc 2 is supported",
			tg->py_major, tg->py_minor, tg->glibc_major, tg->glibc_minor, tg->arch ? tg->arch : "?");
	struct udfb_pytags *t = udfb_calloc(1, sizeof(*t));
	for (int k = 0; k < 3; k++)
		udfb_strmap_init(&t->ids[k]);
	char **plats;
	size_t n_plats = platforms(&plats, tg);
	generate(t, tg, plats, n_plats); /* ids only */
	clear_tags(t);
	size_t cells = t->n_parts[0] * t->n_parts[1] * t->n_parts[2];
	t->rank = udfb_malloc(cells * sizeof(*t->rank));
	memset(t->rank, 0xff, cells * sizeof(*t->rank)); /* -1 */
	generate(t, tg, plats, n_plats);
	for (size_t k = 0; k < n_plats; k++)
		free(plats[k]);
	free(plats);
	*out = t;
	return 0;
}

void udfb_pytags_free(struct udfb_pytags *t)
{
	if (!t)
		return;
	clear_tags(t);
	for (int k = 0; k < 3; k++) {
		for (size_t j = 0; j < t->n_parts[k]; j++)
			free(t->parts[k][j]);
		free(t->parts[k]);
		udfb_strmap_free(&t->ids[k]);
	}
	free(t->rank);
	free(t);
}

/* The ids of a wheel's tags of one kind, each once (a name may repeat a
 * tag; "py3.py3.py3" must not cost a cube of lookups). */
static size_t known_ids(size_t *ids, unsigned char *seen, const struct udfb_strmap *m, char **tags, size_t n)
{
	size_t k = 0;
	for (size_t j = 0; j < n; j++) {
		size_t id;
		if (udfb_strmap_get(m, tags[j], &id) && !seen[id]) {
			seen[id] = 1;
			ids[k++] = id;
		}
	}
	return k;
}

int udfb_pytags_rank(const struct udfb_pytags *t, const struct udfb_wheelname *w)
{
	size_t cap = t->n_parts[0] + t->n_parts[1] + t->n_parts[2];
	size_t ids_buf[512];
	unsigned char seen_buf[512];
	size_t *ids = cap <= 512 ? ids_buf : udfb_malloc(cap * sizeof(*ids));
	unsigned char *seen = cap <= 512 ? seen_buf : udfb_malloc(cap);
	memset(seen, 0, cap);
	size_t *a = ids, *b = a + t->n_parts[0], *c = b + t->n_parts[1];
	size_t na = known_ids(a, seen, &t->ids[0], w->py, w->n_py);
	size_t nb = known_ids(b, seen + t->n_parts[0], &t->ids[1], w->abi, w->n_abi);
	size_t nc = known_ids(c, seen + t->n_parts[0] + t->n_parts[1], &t->ids[2], w->plat, w->n_plat);
	int best = -1;
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++)
			for (size_t k = 0; k < nc; k++) {
				int r = t->rank[(a[i] * t->n_parts[1] + b[j]) * t->n_parts[2] + c[k]];
				if (r >= 0 && (best < 0 || r < best))
					best = r;
			}
	if (ids != ids_buf)
		free(ids);
	if (seen != seen_buf)
		free(seen);
	return best;
}

char *udfb_pytags_describe(const struct udfb_pytags *t)
{
	struct udfb_buf b;
	udfb_buf_init(&b, 4096);
	for (size_t k = 0; k < t->n_tags && k < PYTAGS_DESCRIBE_FIRST; k++)
		udfb_buf_printf(&b, "%s%s", k ? ", " : "", t->tags[k]);
	if (t->n_tags > PYTAGS_DESCRIBE_FIRST + 1)
		udfb_buf_addstr(&b, ", ...");
	if (t->n_tags > PYTAGS_DESCRIBE_FIRST)
		udfb_buf_printf(&b, ", %s", t->tags[t->n_tags - 1]);
	udfb_buf_printf(&b, " (%zu tags)", t->n_tags);
	return udfb_buf_steal(&b, NULL);
}
