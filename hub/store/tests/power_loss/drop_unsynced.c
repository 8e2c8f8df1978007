/*
 * LD_PRELOAD layer that models what a power loss keeps of one file: only what an fsync or
 * fdatasync made durable. Written pages that were merely handed to the kernel (pwrite, or
 * pwrite followed by sync_file_range, which flushes neither the drive cache nor the file
 * size) are lost.
 *
 * FLOTILLA_POWERCUT_FILE names the file. Every pwrite to it is remembered as a dirty range;
 * an fsync or fdatasync on any descriptor of it copies the dirty ranges into
 * FLOTILLA_POWERCUT_FILE.durable and sets that copy's size to the file's. After killing
 * the process, replacing the file with the copy gives what the disk would hold.
 *
 * Files in the directory `blobs` beside that file (sled's big records, each written once)
 * are handled whole: an fsync or fdatasync of one appends its path to
 * FLOTILLA_POWERCUT_FILE.synced-blobs, and the others are to be deleted after the kill.
 *
 * Build: cc -shared -fPIC -O2 -o drop_unsynced.so drop_unsynced.c -ldl -lpthread
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_RANGES 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static off_t range_start[MAX_RANGES];
static off_t range_end[MAX_RANGES];
static int ranges;
static int all_dirty;

static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

static void resolve(void) {
    if (!real_fsync) {
        real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
        real_pwrite = dlsym(RTLD_NEXT, "pwrite");
        real_fsync = dlsym(RTLD_NEXT, "fsync");
        real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    }
}

/* Whether fd is the modelled file. */
static int is_target(int fd) {
    const char *path = getenv("FLOTILLA_POWERCUT_FILE");
    struct stat want, got;
    if (!path || stat(path, &want) != 0 || fstat(fd, &got) != 0) {
        return 0;
    }
    return want.st_dev == got.st_dev && want.st_ino == got.st_ino;
}

static void note_write(int fd, off_t off, ssize_t len) {
    if (len <= 0 || !is_target(fd)) {
        return;
    }
    pthread_mutex_lock(&lock);
    off_t end = off + len;
    int merged = 0;
    for (int i = 0; i < ranges && !merged; i++) {
        if (off <= range_end[i] && end >= range_start[i]) {
            if (off < range_start[i]) range_start[i] = off;
            if (end > range_end[i]) range_end[i] = end;
            merged = 1;
        }
    }
    if (!merged) {
        if (ranges == MAX_RANGES) {
            all_dirty = 1;
        } else {
            range_start[ranges] = off;
            range_end[ranges] = end;
            ranges++;
        }
    }
    pthread_mutex_unlock(&lock);
}

static void copy_range(int from, int to, off_t start, off_t end) {
    char buf[1 << 16];
    while (start < end) {
        size_t want = (size_t)(end - start) < sizeof buf ? (size_t)(end - start) : sizeof buf;
        ssize_t n = pread(from, buf, want, start);
        if (n <= 0) {
            return;
        }
        if (real_pwrite64(to, buf, (size_t)n, start) != n) {
            abort();
        }
        start += n;
    }
}

/* Lists fd's file as synced when it is in the blobs directory beside the file. */
static void note_blob_sync(int fd) {
    const char *target = getenv("FLOTILLA_POWERCUT_FILE");
    char link[64], path[4096], blobs[4096], list[4096];
    if (!target) {
        return;
    }
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) {
        return;
    }
    path[n] = 0;
    const char *slash = strrchr(target, '/');
    if (!slash) {
        return;
    }
    snprintf(blobs, sizeof blobs, "%.*s/blobs/", (int)(slash - target), target);
    if (strncmp(path, blobs, strlen(blobs)) != 0) {
        return;
    }
    snprintf(list, sizeof list, "%s.synced-blobs", target);
    pthread_mutex_lock(&lock);
    FILE *f = fopen(list, "a");
    if (!f) {
        abort();
    }
    fprintf(f, "%s\n", path);
    fclose(f);
    pthread_mutex_unlock(&lock);
}

/* Makes the dirty ranges of the file durable in the copy. */
static void make_durable(int fd) {
    note_blob_sync(fd);
    if (!is_target(fd)) {
        return;
    }
    char shadow[4096];
    snprintf(shadow, sizeof shadow, "%s.durable", getenv("FLOTILLA_POWERCUT_FILE"));
    pthread_mutex_lock(&lock);
    int out = open(shadow, O_WRONLY | O_CREAT, 0644);
    struct stat st;
    if (out < 0 || fstat(fd, &st) != 0) {
        abort();
    }
    if (all_dirty) {
        copy_range(fd, out, 0, st.st_size);
    } else {
        for (int i = 0; i < ranges; i++) {
            copy_range(fd, out, range_start[i], range_end[i]);
        }
    }
    if (ftruncate(out, st.st_size) != 0) {
        abort();
    }
    close(out);
    ranges = 0;
    all_dirty = 0;
    pthread_mutex_unlock(&lock);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    resolve();
    ssize_t n = real_pwrite64(fd, buf, count, offset);
    note_write(fd, offset, n);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    resolve();
    ssize_t n = real_pwrite(fd, buf, count, offset);
    note_write(fd, offset, n);
    return n;
}

int fsync(int fd) {
    resolve();
    make_durable(fd);
    return real_fsync(fd);
}

int fdatasync(int fd) {
    resolve();
    make_durable(fd);
    return real_fdatasync(fd);
}
