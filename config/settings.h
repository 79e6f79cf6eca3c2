/* The settings engine.  Every setting of the service, the command line and
 * the scheduler backends is one row of a table: its name (the flag without
 * "--", and how errors name it), its key in the JSON file, its UDFB_*
 * variable, its type and range, its default and its help.  The file, the
 * environment, the flags, --help and docs/configuration.md's tables are
 * all read from those rows (`udf-builder settings --markdown` prints the
 * tables; tests/lint/settings-docs.py compares them with the docs).
 *
 * A section is one table and the struct its rows write into, by offset.
 * Sources apply in order: defaults, the file, the environment, the flags;
 * a later one wins, and a repeatable list set by a later source replaces
 * an earlier source's list whole where its setter says so.
 *
 * An error names the setting once, as the user wrote it: the source that
 * read the value prefixes it (`--packages-glibc`, `UDFB_PACKAGES_GLIBC`,
 * `packages.glibc` in the file), so a row's parser and its set() and
 * set_json() say only what is wrong with the value ("'3.0' is not a glibc
 * version like 2.36"; a sub-key as "3.12: ..."). */
#ifndef UDFB_SETTINGS_H
#define UDFB_SETTINGS_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"

enum udfb_set_type {
	UDFB_SET_STR, /* char *, owned and replaced */
	UDFB_SET_INT, /* int within [lo, hi] */
	UDFB_SET_LONG, /* long within [lo, hi] */
	UDFB_SET_LLONG, /* long long within [lo, hi] */
	UDFB_SET_SWITCH, /* a flag without a value: the int becomes 1 */
	UDFB_SET_FN, /* the row's set() parses it */
	UDFB_SET_JSON, /* file only: the row's set_json() takes the JSON value */
};

/* Where a value comes from, in the order they apply. */
enum udfb_set_source { UDFB_SRC_DEFAULT, UDFB_SRC_FILE, UDFB_SRC_ENV, UDFB_SRC_FLAG };

#define UDFB_SET_REPEAT 0x1u /* a repeatable flag; a JSON array in the file */
#define UDFB_SET_NOFLAG 0x2u /* no flag (secrets stay off command lines) */

struct udfb_setting {
	const char *name; /* flag without "--"; errors name it */
	const char *file; /* key in the file (inside the section's object); NULL: none */
	const char *env; /* "UDFB_..."; NULL: none */
	const char *split; /* the variable is a list split at these bytes; NULL: one value */
	const char *arg; /* the flag's value in --help ("ADDR"); NULL for a switch */
	enum udfb_set_type type;
	unsigned flags;
	long long lo, hi; /* numbers' range */
	size_t off; /* of the value in the section's struct */
	int (*set)(void *obj, const struct udfb_setting *r, enum udfb_set_source src, const char *v,
		   struct udfb_err *err);
	int (*set_json)(void *obj, json_t *v, struct udfb_err *err);
	const char *dflt; /* the default as shown ("`127.0.0.1:50051`"); NULL: none */
	const char *help; /* one line for --help (backticks dropped) */
	const char *doc; /* the docs' meaning, when longer than help (markdown) */
	char short_name; /* a one-letter flag ('j'), or 0 */
};

struct udfb_settings {
	const char *name; /* "service", "imports", "local scheduler" */
	const char *object; /* the file's object holding the keys ("imports"); NULL: top level */
	const struct udfb_setting *rows;
	size_t n;
	int options; /* backend options (keys only): docs show option, default, meaning */
};

#define UDFB_SETTINGS(name, object, rows, options)                          \
	{                                                                   \
		name, object, rows, sizeof(rows) / sizeof(*(rows)), options \
	}

const struct udfb_setting *udfb_settings_find(const struct udfb_settings *s, const char *name);
const struct udfb_setting *udfb_settings_find_key(const struct udfb_settings *s, const char *key);
/* One value from a source, parsed by the row's type; an error says what is
 * wrong with v and leaves naming the setting to the caller. */
int udfb_setting_set(const struct udfb_setting *r, void *obj, enum udfb_set_source src, const char *v,
		     struct udfb_err *err);
/* A file value: a string or integer as set() takes it, an array item by
 * item (repeatable rows), an object or any value for set_json().  key is
 * the value's place in the file ("packages.glibc"): errors start with it. */
int udfb_setting_set_json(const struct udfb_setting *r, void *obj, json_t *v, const char *key, struct udfb_err *err);
/* Every row's variable that is set and not empty; errors name the variable. */
int udfb_settings_load_env(const struct udfb_settings *s, void *obj, struct udfb_err *err);
/* The keys of a JSON object by the rows' file keys ("where" names it in
 * errors: "imports"); *unknown gets the first key no row has (NULL: error). */
int udfb_settings_load_object(const struct udfb_settings *s, void *obj, json_t *o, const char *where,
			      struct udfb_err *err);
/* The literal default of a row (see dflt) into buf; 0 when it has none. */
int udfb_setting_literal_default(const struct udfb_setting *r, char *buf, size_t n);
/* Sets every row's literal default: the table is where they are written. */
void udfb_settings_defaults(const struct udfb_settings *s, void *obj);
/* Frees the STR rows' strings. */
void udfb_settings_free(const struct udfb_settings *s, void *obj);

/* Flags: the rows of secs[k] (writing into objs[k]) named in only (NULL:
 * all rows with a flag).  Stops at the end; positionals are moved to the
 * end of argv (GNU getopt), *first gets the index of the first.  Returns 1
 * for --help (nothing else is done), 0, or -1 with "CMD: unknown option". */
int udfb_settings_parse_args(const struct udfb_settings *const *secs, void *const *objs, size_t n_secs,
			     const char *const *only, const char *cmd, int argc, char **argv, int *first,
			     struct udfb_err *err);
/* The last value of --NAME V or --NAME=V in argv (a file to read first). */
const char *udfb_settings_prescan(int argc, char **argv, const char *name);

/* "  --name ARG   help (default)" for --help. */
void udfb_settings_usage(FILE *f, const struct udfb_settings *s, const char *const *only);
void udfb_setting_usage(FILE *f, const struct udfb_setting *r);
/* The section's table as docs/configuration.md holds it. */
void udfb_settings_markdown(FILE *f, const struct udfb_settings *s);

#endif
