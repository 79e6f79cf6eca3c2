/* Network namespaces: see netns.h. */
#include "scheduler/netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

struct job {
	int netns;
	int (*fn)(void *);
	void *arg;
	int rc;
};

static void *job_main(void *p)
{
	struct job *j = p;
	/* setns changes only this thread, which ends right after: no other
	 * thread of the service ever runs in a sandbox's namespace. */
	if (j->netns >= 0 && setns(j->netns, CLONE_NEWNET) < 0) {
		j->rc = -errno;
		return NULL;
	}
	j->rc = j->fn(j->arg);
	return NULL;
}

int udfb_netns_run(int netns_fd, int (*fn)(void *), void *arg)
{
	struct job j = { .netns = netns_fd, .fn = fn, .arg = arg, .rc = -EAGAIN };
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 256u << 10);
	int rc = pthread_create(&t, &at, job_main, &j);
	pthread_attr_destroy(&at);
	if (rc != 0)
		return -rc;
	pthread_join(t, NULL);
	return j.rc;
}

/* In the new namespace: lo up (it starts down), and a descriptor of it. */
static int make_ns(void *arg)
{
	int *out = arg;
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	int rc = s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ? -errno : 0;
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
	}
	if (s >= 0)
		close(s);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int udfb_netns_new(int *fd, struct udfb_err *err)
{
	*fd = -1;
	int rc = udfb_netns_run(-1, make_ns, fd);
	if (rc < 0)
		return udfb_err_sys(err, -rc, "new network namespace for a sandbox (needs root)");
	return 0;
}

int udfb_netns_of_pid(pid_t pid, int *fd, struct udfb_err *err)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/ns/net", (long)pid);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return udfb_err_sys(err, errno, "open %s", path);
	return 0;
}

unsigned long udfb_netns_inode(int fd)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* SIGKILL the processes in the namespace (dev, ino); how many were found. */
static int kill_in(dev_t dev, ino_t ino)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int found = 0;
	pid_t self = getpid();
	struct dirent *e;
	while ((e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		char path[64];
		struct stat st;
		snprintf(path, sizeof(path), "/proc/%ld/ns/net", pid);
		if (stat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino) {
			kill((pid_t)pid, SIGKILL);
			found++;
		}
	}
	closedir(d);
	return found;
}

int udfb_netns_kill_members(int fd, int wait_ms)
{
	struct stat ns;
	if (fd < 0 || fstat(fd, &ns) < 0)
		return 0;
	long long until = udfb_now_ms() + wait_ms;
	int left;
	while ((left = kill_in(ns.st_dev, ns.st_ino)) > 0 && udfb_now_ms() < until)
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	return left;
}
