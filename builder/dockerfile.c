/* Dockerfile rendering: see dockerfile.h.  The template language is two
 * rules, enough for a file that must stay readable: "{{NAME}}" is replaced by
 * a value, and a line that starts with "{{?COND}}" is kept only when COND
 * holds.  An unknown name is a bug, reported as such. */
#include "builder/dockerfile.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/cleanup.h"
#include "common/fsutil.h"
#include "builder/templates.h"

static int expand_line(struct udfb_buf *b, const char *line, size_t n, const char *from, struct udfb_err *err)
{
	size_t i = 0;
	while (i < n) {
		const char *open = memmem(line + i, n - i, "{{", 2);
		if (!open)
			return udfb_buf_add(b, line + i, n - i);
		udfb_buf_add(b, line + i, (size_t)(open - line) - i);
		const char *close = memmem(open, n - (size_t)(open - line), "}}", 2);
		if (!close)
			return udfb_err_set(err, UDFB_E_INTERNAL, "Dockerfile template: unclosed '{{'");
		size_t name_len = (size_t)(close - open) - 2;
		if (name_len == 4 && memcmp(open + 2, "FROM", 4) == 0)
			udfb_buf_addstr(b, from);
		else
			return udfb_err_set(err, UDFB_E_INTERNAL, "Dockerfile template: unknown name '%.*s'",
					    (int)name_len, open + 2);
		i = (size_t)(close - line) + 2;
	}
	return 0;
}

int udfb_dockerfile_render(char **out, const char *from, int has_requirements, struct udfb_err *err)
{
	for (const char *c = from; *c; c++)
		if (*c <= ' ' || *c == 0x7f)
			return udfb_err_set(err, UDFB_E_INVALID,
					    "base image name '%s': holds white space or a control character", from);
	const struct udfb_template *t = udfb_template_get("Dockerfile.in");
	const char *p = (const char *)t->data, *end = p + t->len;
	struct udfb_buf b;
	udfb_buf_init(&b, 1 << 20);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *line = p;
		p += n + (nl ? 1 : 0);
		if (n >= 17 && memcmp(line, "{{?requirements}}", 17) == 0) {
			if (!has_requirements)
				continue;
			line += 17, n -= 17;
		}
		if (expand_line(&b, line, n, from, err) < 0) {
			udfb_buf_free(&b);
			return -1;
		}
		udfb_buf_add(&b, "\n", 1);
	}
	*out = udfb_buf_steal(&b, NULL);
	return 0;
}

static int put(const char *dir, const char *name, const void *data, size_t len, struct udfb_err *err)
{
	cleanup_free char *path = udfb_path_join(dir, name);
	return udfb_write_file_atomic(path, data, len, err);
}

static int write_imports(const char *outdir, const struct udfb_context *ctx, struct udfb_err *err)
{
	cleanup_free char *dir = udfb_path_join(outdir, "imports");
	if (udfb_mkdir_p(dir, 0755, err) < 0)
		return -1;
	for (size_t k = 0; k < ctx->n_imports; k++) {
		cleanup_free char *dst = udfb_path_join(dir, ctx->imports[k].name);
		unlink(dst);
		if (udfb_link_or_copy(ctx->imports[k].file.path, dst, err) < 0)
			return -1;
		chmod(dst, 0644);
	}
	return 0;
}

int udfb_dockerfile_write(const char *outdir, const char *from, const struct udfb_request *req,
			  const struct udfb_context *ctx, struct udfb_err *err)
{
	cleanup_free char *text = NULL;
	if (udfb_dockerfile_render(&text, from, ctx->requirements != NULL, err) < 0)
		return -1;
	const struct udfb_template *stub = udfb_template_get("server.py");
	if (udfb_mkdir_p(outdir, 0755, err) < 0 || put(outdir, "Dockerfile", text, strlen(text), err) < 0 ||
	    put(outdir, "server.py", stub->data, stub->len, err) < 0 ||
	    put(outdir, "udf.py", req->spec.code, req->spec.code_len, err) < 0 ||
	    put(outdir, "udf.json", ctx->udf_json, ctx->udf_json_len, err) < 0)
		return udfb_err_wrap(err, "dockerfile %s", outdir);
	if (ctx->requirements && put(outdir, "requirements.txt", ctx->requirements, ctx->requirements_len, err) < 0)
		return udfb_err_wrap(err, "dockerfile %s", outdir);
	if (write_imports(outdir, ctx, err) < 0)
		return udfb_err_wrap(err, "dockerfile %s", outdir);
	return 0;
}
