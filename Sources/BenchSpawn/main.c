// BenchSpawn CMD [ARG...]: runs CMD once (output to /dev/null) and prints
// "<wall microseconds> <peak RSS KiB> <exit status>" for the benchmark's short-commands figure.
//
// Why a process of its own: a child's ru_maxrss counts the memory of the process it was
// started from, up to its exec (Linux records the old address space's high-water mark at
// exec, and posix_spawn's child shares its parent's). Started from the benchmark (60 MiB and
// more by then), every command read as the benchmark's size; forked from this one (about
// 1 MiB), it reads as its own.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: BenchSpawn CMD [ARG...]\n");
        return 2;
    }
    if (access(argv[1], X_OK) != 0) {
        fprintf(stderr, "BenchSpawn: %s: %s\n", argv[1], strerror(errno));
        return 2;
    }
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    if (pid < 0) { perror("BenchSpawn: fork"); return 2; }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
            if (null > 2) close(null);
        }
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    while (wait4(pid, &status, 0, &usage) < 0) {
        if (errno != EINTR) { perror("BenchSpawn: wait4"); return 2; }
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long long micros = (end.tv_sec - start.tv_sec) * 1000000LL + (end.tv_nsec - start.tv_nsec) / 1000;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    printf("%lld %ld %d\n", micros, usage.ru_maxrss, code);
    return 0;
}
