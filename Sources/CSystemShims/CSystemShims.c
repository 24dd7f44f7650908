#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include "CSystemShims.h"

int relais_exchange(const char *path, const char *other) {
#ifdef __linux__
    return renameat2(AT_FDCWD, path, AT_FDCWD, other, RENAME_EXCHANGE);
#else
    (void)path;
    (void)other;
    errno = ENOSYS;
    return -1;
#endif
}

int relais_syncfs(int fd) {
#ifdef __linux__
    return syncfs(fd);
#else
    (void)fd;
    sync();
    return 0;
#endif
}

static uint32_t crc32c_table[256];

__attribute__((constructor))
static void crc32c_make_table(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
        crc32c_table[byte] = crc;
    }
}

static uint32_t crc32c_software(uint32_t crc, const unsigned char *bytes, size_t length) {
    while (length--) crc = crc32c_table[(crc ^ *bytes++) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *bytes, size_t length) {
    uint64_t wide = crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, bytes, 8);
        wide = __builtin_ia32_crc32di(wide, word);
        bytes += 8;
        length -= 8;
    }
    uint32_t narrow = (uint32_t)wide;
    while (length--) narrow = __builtin_ia32_crc32qi(narrow, *bytes++);
    return narrow;
}
#endif

uint32_t relais_crc32c(uint32_t crc, const void *data, size_t length) {
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return ~crc32c_hardware(crc, data, length);
#endif
    return ~crc32c_software(crc, data, length);
}

int relais_lower_thread_priority(void) {
#ifdef SCHED_IDLE
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, SCHED_IDLE, &param);
#else
    return 0;
#endif
}
