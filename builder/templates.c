/* Lookup of the embedded templates: see templates.h. */
#include "builder/templates.h"

#include <pthread.h>
#include <string.h>

extern const unsigned char udfb_tpl_server_py_start[], udfb_tpl_server_py_end[];
extern const unsigned char udfb_tpl_dockerfile_start[], udfb_tpl_dockerfile_end[];

extern const unsigned char udfb_tpl_guard_py_start[], udfb_tpl_guard_py_end[];

static struct udfb_template table[2];
extern const unsigned char udfb_tpl_run_site_start[], udfb_tpl_run_site_end[];

static struct udfb_template guard, run_site;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void fill_table(void)
{
	table[0] = (struct udfb_template){ "server.py", udfb_tpl_server_py_start,
					   (size_t)(udfb_tpl_server_py_end - udfb_tpl_server_py_start) };
	table[1] = (struct udfb_template){ "Dockerfile.in", udfb_tpl_dockerfile_start,
					   (size_t)(udfb_tpl_dockerfile_end - udfb_tpl_dockerfile_start) };
	guard = (struct udfb_template){ "databend/guard.py", udfb_tpl_guard_py_start,
					(size_t)(udfb_tpl_guard_py_end - udfb_tpl_guard_py_start) };
	run_site = (struct udfb_template){ "databend/run_site.py", udfb_tpl_run_site_start,
					   (size_t)(udfb_tpl_run_site_end - udfb_tpl_run_site_start) };
}

static void fill(void)
{
	pthread_once(&table_once, fill_table);
}

const struct udfb_template *udfb_template_get(const char *name)
{
	fill();
	for (size_t k = 0; k < sizeof(table) / sizeof(*table); k++)
		if (strcmp(table[k].name, name) == 0)
			return &table[k];
	return NULL;
}

void udfb_templates_digest(char out[UDFB_DIGEST_LEN + 1])
{
	fill();
	struct udfb_sha256 *h = udfb_sha256_new();
	for (size_t k = 0; k < sizeof(table) / sizeof(*table); k++) {
		udfb_sha256_update(h, table[k].name, strlen(table[k].name) + 1);
		udfb_sha256_update(h, table[k].data, table[k].len);
	}
	udfb_sha256_final(h, out);
}

const struct udfb_template *udfb_template_guard(void)
{
	fill();
	return &guard;
}

void udfb_templates_guard_digest(char out[UDFB_DIGEST_LEN + 1])
{
	fill();
	udfb_sha256_digest(guard.data, guard.len, out);
}

const struct udfb_template *udfb_template_run_site(void)
{
	fill();
	return &run_site;
}
