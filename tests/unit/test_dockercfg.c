/* docker's config.json as docker and skopeo read it: auths keys in their
 * several spellings, auth/username+password/identitytoken, the order of
 * credHelpers, credsStore and auths, credential helpers run for real. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "registry-client/dockercfg.h"
#include "common/fsutil.h"

static int parse(struct udfb_dockercfg_entry *e, const char *json, const char *host, struct udfb_err *err)
{
	return udfb_dockercfg_parse(e, json, strlen(json), host, "/cfg/config.json", err);
}

static void found(const char *json, const char *host, const char *user, const char *pass, const char *idt)
{
	struct udfb_dockercfg_entry e;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&e, json, host, &err);
	CHECK(rc == 0 && e.has_cred, "%s in %s (%s)", host, json, err.msg ? err.msg : "ok");
	if (rc == 0 && e.has_cred) {
		CHECK_STR(e.cred.username ? e.cred.username : "", user, "  user");
		CHECK_STR(e.cred.password ? e.cred.password : "", pass, "  password");
		CHECK_STR(e.cred.identity_token ? e.cred.identity_token : "", idt, "  identity token");
		CHECK_STR(e.cred.source, "/cfg/config.json", "  source named");
	}
	if (rc == 0)
		udfb_dockercfg_entry_clear(&e);
	udfb_err_clear(&err);
}

static void auths(void)
{
	/* "dXNlcjpwYXNz" = user:pass, "dTpwOnc6eA==" = u:p:w:x */
	found("{\"auths\":{\"reg.example.com:5000\":{\"auth\":\"dXNlcjpwYXNz\"}}}", "reg.example.com:5000", "user",
	      "pass", "");
	found("{\"auths\":{\"https://reg.example.com:5000/v1/\":{\"auth\":\"dXNlcjpwYXNz\"}}}", "reg.example.com:5000",
	      "user", "pass", "");
	found("{\"auths\":{\"http://REG.example.com\":{\"auth\":\"dXNlcjpwYXNz\"}}}", "reg.example.com", "user", "pass",
	      "");
	found("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"dXNlcjpwYXNz\"}}}", "docker.io", "user", "pass",
	      "");
	found("{\"auths\":{\"h\":{\"auth\":\"dTpwOnc6eA==\"}}}", "h", "u", "p:w:x", "");
	found("{\"auths\":{\"h\":{\"username\":\"u2\",\"password\":\"p2\"}}}", "h", "u2", "p2", "");
	found("{\"auths\":{\"h\":{\"auth\":\"\",\"identitytoken\":\"tok-1\"}}}", "h", "", "", "tok-1");
	found("{\"auths\":{\"other\":{\"auth\":\"eDp5\"},\"h\":{\"auth\":\"dXNlcjpwYXNz\"}}}", "h", "user", "pass", "");

	struct udfb_dockercfg_entry e;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(parse(&e, "{\"auths\":{\"h:1\":{\"auth\":\"dXNlcjpwYXNz\"}}}", "h:2", &err) == 0 && !e.has_cred,
	      "another port is another registry");
	udfb_dockercfg_entry_clear(&e);
	CHECK(parse(&e, "{\"auths\":{\"h\":{\"auth\":\"\"}}}", "h", &err) == 0 && !e.has_cred,
	      "an empty entry holds nothing");
	udfb_dockercfg_entry_clear(&e);
	CHECK(parse(&e, "{\"auths\":{\"h\":{\"auth\":\"!!c2VjcmV0\"}}}", "h", &err) < 0 && err.cat == UDFB_E_INVALID &&
		      !strstr(err.msg, "c2VjcmV0") && strstr(err.msg, "/cfg/config.json"),
	      "bad base64: INVALID, names the file, not the value (%s)", err.msg);
	udfb_err_clear(&err);
	CHECK(parse(&e, "{\"auths\":{\"h\":{\"auth\":\"bm9jb2xvbg==\"}}}", "h", &err) < 0,
	      "auth without a colon is refused");
	udfb_err_clear(&err);
	CHECK(parse(&e, "[1,2]", "h", &err) < 0 && err.cat == UDFB_E_INVALID, "not an object");
	udfb_err_clear(&err);
}

static void helpers(void)
{
	struct udfb_dockercfg_entry e;
	struct udfb_err err = UDFB_ERR_INIT;
	int rc = parse(&e,
		       "{\"credsStore\":\"store\",\"credHelpers\":{\"h\":\"pass\"},\"auths\":{\"h\":{\"auth\":"
		       "\"dXNlcjpwYXNz\"}}}",
		       "h", &err);
	CHECK(rc == 0 && e.helpers[0] && strcmp(e.helpers[0], "pass") == 0 && e.helpers[1] &&
		      strcmp(e.helpers[1], "store") == 0 && e.has_cred,
	      "credHelpers[host], then credsStore, then auths");
	udfb_dockercfg_entry_clear(&e);
	rc = parse(&e, "{\"credsStore\":\"store\",\"credHelpers\":{\"other\":\"pass\"}}", "h", &err);
	CHECK(rc == 0 && e.helpers[0] && strcmp(e.helpers[0], "store") == 0 && !e.helpers[1],
	      "credHelpers of another host do not apply");
	udfb_dockercfg_entry_clear(&e);
}

static void write_exec(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, 0755);
}

static void lookup(void)
{
	char dir[] = "/tmp/udfb-dockercfg.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char path[256], helper[256], cfg[256], newpath[4096];
	snprintf(helper, sizeof(helper), "%s/docker-credential-unit", dir);
	write_exec(helper, "#!/bin/sh\nread -r s\ncase \"$s\" in\n"
			   "h1) echo '{\"ServerURL\":\"h1\",\"Username\":\"hu\",\"Secret\":\"hs\"}' ;;\n"
			   "h2) echo '{\"ServerURL\":\"h2\",\"Username\":\"<token>\",\"Secret\":\"it\"}' ;;\n"
			   "broken) exit 3 ;;\n"
			   "*) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n");
	snprintf(newpath, sizeof(newpath), "%s:%s", dir, getenv("PATH"));
	setenv("PATH", newpath, 1);
	snprintf(cfg, sizeof(cfg), "%s/config.json", dir);
	write_exec(cfg, "{\"credsStore\":\"unit\",\"auths\":{\"h3\":{\"auth\":\"dXNlcjpwYXNz\"}}}");
	struct udfb_cred c;
	struct udfb_err err = UDFB_ERR_INIT;
	CHECK(udfb_dockercfg_lookup(&c, cfg, "h1", &err) == 1 && strcmp(c.username, "hu") == 0 &&
		      strcmp(c.password, "hs") == 0 && strcmp(c.source, "docker-credential-unit") == 0,
	      "a helper's answer (%s)", err.msg ? err.msg : "ok");
	udfb_cred_clear(&c);
	CHECK(udfb_dockercfg_lookup(&c, cfg, "h2", &err) == 1 && c.identity_token &&
		      strcmp(c.identity_token, "it") == 0 && !c.password,
	      "Username <token>: the Secret is an identity token");
	udfb_cred_clear(&c);
	CHECK(udfb_dockercfg_lookup(&c, cfg, "h3", &err) == 1 && strcmp(c.password, "pass") == 0,
	      "the helper has none: auths answers");
	udfb_cred_clear(&c);
	CHECK(udfb_dockercfg_lookup(&c, cfg, "h4", &err) == 0, "nobody has any: none, no error");
	CHECK(udfb_dockercfg_lookup(&c, cfg, "broken", &err) < 0 &&
		      strstr(err.msg, "docker-credential-unit failed (exit 3)"),
	      "a failing helper is an error naming it (%s)", err.msg ? err.msg : "none");
	udfb_err_clear(&err);
	write_exec(cfg, "{\"credsStore\":\"../../bin/sh\"}");
	CHECK(udfb_dockercfg_lookup(&c, cfg, "h1", &err) < 0 && err.cat == UDFB_E_INVALID,
	      "a helper name with a path is refused");
	udfb_err_clear(&err);
	write_exec(cfg, "{\"credsStore\":\"not-installed-anywhere\"}");
	CHECK(udfb_dockercfg_lookup(&c, cfg, "h1", &err) < 0 &&
		      strstr(err.msg, "docker-credential-not-installed-anywhere"),
	      "a missing helper is an error naming it");
	udfb_err_clear(&err);
	/* Issue 18: a helper sees the variables helpers use, not the
	 * service's secrets; it dumps its environment as its Secret. */
	snprintf(helper, sizeof(helper), "%s/docker-credential-envdump", dir);
	write_exec(
		helper,
		"#!/bin/sh\nread -r s\nprintf '{\"Username\":\"u\",\"Secret\":\"%s\"}' \"$(env | tr '\\n\"' ' _')\"\n");
	write_exec(cfg, "{\"credsStore\":\"envdump\"}");
	setenv("UDFB_TOKEN_SECRETS", "first-secret-0123456789", 1);
	setenv("UDFB_SOME_PASSWORD", "pw", 1);
	setenv("KUBE_TOKEN", "kt", 1);
	setenv("DOCKER_CONFIG", dir, 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/0", 1);
	setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
	int got = udfb_dockercfg_lookup(&c, cfg, "h1", &err);
	const char *env = got == 1 ? c.password : "";
	CHECK(got == 1 && !strstr(env, "UDFB_") && !strstr(env, "first-secret") && !strstr(env, "KUBE_TOKEN"),
	      "the helper does not see UDFB_TOKEN_SECRETS nor other variables (%s)", got == 1 ? env : err.msg);
	CHECK(got == 1 && strstr(env, "PATH=") && strstr(env, "HOME=") && strstr(env, "DOCKER_CONFIG=") &&
		      strstr(env, "XDG_RUNTIME_DIR=/run/user/0") && strstr(env, "AWS_ROLE_ARN="),
	      "it sees PATH, HOME, DOCKER_CONFIG, XDG_* and its cloud SDK's variables");
	CHECK(getenv("UDFB_TOKEN_SECRETS") != NULL, "the service keeps its own environment");
	udfb_cred_clear(&c);
	udfb_err_clear(&err);
	unsetenv("UDFB_TOKEN_SECRETS"), unsetenv("UDFB_SOME_PASSWORD"), unsetenv("KUBE_TOKEN");
	unsetenv("DOCKER_CONFIG"), unsetenv("XDG_RUNTIME_DIR"), unsetenv("AWS_ROLE_ARN");
	snprintf(path, sizeof(path), "%s/none.json", dir);
	CHECK(udfb_dockercfg_lookup(&c, path, "h1", &err) == 0, "no config file: no credentials, no error");
	setenv("DOCKER_CONFIG", dir, 1);
	char *p = udfb_dockercfg_path();
	CHECK_STR(p, cfg, "$DOCKER_CONFIG/config.json");
	free(p);
	unsetenv("DOCKER_CONFIG");
	setenv("HOME", "/home/x", 1);
	p = udfb_dockercfg_path();
	CHECK_STR(p, "/home/x/.docker/config.json", "else ~/.docker/config.json");
	free(p);
	udfb_rm_rf(dir);
}

int main(void)
{
	auths();
	helpers();
	lookup();
	return check_done();
}
