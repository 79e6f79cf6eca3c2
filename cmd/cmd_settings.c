/* udf-builder settings [--markdown] [SECTION]: every setting of every
 * table, as the engine (config/settings.h) holds them.  --markdown prints
 * docs/configuration.md's tables, which tests/lint/settings-docs.py
 * compares with the docs (`make docs-settings` writes them). */
#include <stdio.h>
#include <string.h>

#include "cmd/cli.h"
#include "config/config.h"
#include "scheduler/k8s.h"
#include "scheduler/local.h"

static const struct {
	const char *id;
	const struct udfb_settings *s;
} tables[] = {
	{ "service", &udfb_settings_service },	 { "imports", &udfb_settings_imports },
	{ "packages", &udfb_settings_packages }, { "cli", &udfb_settings_cli },
	{ "local", &udfb_settings_local },	 { "kubernetes", &udfb_settings_k8s },
};

static void text(const struct udfb_settings *s)
{
	if (s->object)
		printf("%s (in the file: \"%s\": {...}):\n", s->name, s->object);
	else
		printf("%s:\n", s->name);
	for (size_t k = 0; k < s->n; k++) {
		const struct udfb_setting *r = &s->rows[k];
		printf("  %-28s file %-22s env %-32s %s\n", r->name, r->file ? r->file : "-", r->env ? r->env : "-",
		       r->help);
	}
}

int udfb_cmd_settings(int argc, char **argv)
{
	int markdown = argc > 1 && strcmp(argv[1], "--markdown") == 0;
	const char *only = argc > 1 + markdown ? argv[1 + markdown] : NULL;
	int shown = 0;
	for (size_t k = 0; k < sizeof(tables) / sizeof(*tables); k++) {
		if (only && strcmp(only, tables[k].id) != 0)
			continue;
		if (markdown)
			udfb_settings_markdown(stdout, tables[k].s);
		else
			text(tables[k].s);
		shown++;
	}
	if (!shown) {
		fprintf(stderr,
			"udf-builder: settings: unknown section '%s' (service, imports, packages, cli, local, "
			"kubernetes)\n",
			only ? only : "");
		return 2;
	}
	return 0;
}
