/* Replays fuzz corpora through a target without libFuzzer, so `make test`
 * runs every saved input (under ASan+UBSan in the sanitized pass).
 * Usage: fuzz_X-replay DIR_OR_FILE...; prints one TAP line per argument. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	return 0;
}

static int replay_dir(const char *dir, int *count)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	if (n < 0)
		return -1;
	for (int k = 0; k < n; k++) {
		if (list[k]->d_name[0] != '.') {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", dir, list[k]->d_name);
			if (replay_file(path) < 0)
				return -1;
			(*count)++;
		}
		free(list[k]);
	}
	free(list);
	return 0;
}

int main(int argc, char **argv)
{
	int failed = 0;
	for (int k = 1; k < argc; k++) {
		struct stat st;
		int count = 0, rc;
		if (stat(argv[k], &st) == 0 && S_ISDIR(st.st_mode))
			rc = replay_dir(argv[k], &count);
		else
			rc = replay_file(argv[k]), count = 1;
		/* A crash never gets here: the sanitizer aborts the process. */
		printf("%s %d - replayed %d inputs of %s\n", rc == 0 && count > 0 ? "ok" : "not ok", k, count, argv[k]);
		failed |= rc != 0 || count == 0;
	}
	printf("1..%d\n", argc - 1);
	return failed;
}
