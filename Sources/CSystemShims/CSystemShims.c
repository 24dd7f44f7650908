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

/* CRC-32C, reflected: the polynomial 0x1EDC6F41 bit-reversed. */
#define CRC32C_POLY 0x82F63B78u

static uint32_t crc32c_table[256];
/* x^(2^k) modulo the polynomial, for shifting a CRC past k-bit lengths. */
static uint32_t crc32c_powers[64];

/* a * b modulo the polynomial (both reflected, x^0 in the top bit). */
static uint32_t crc32c_multiply(uint32_t a, uint32_t b) {
    uint32_t product = 0;
    for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
        if (a & bit) product ^= b;
        b = (b & 1u) ? (b >> 1) ^ CRC32C_POLY : b >> 1;
    }
    return product;
}

__attribute__((constructor))
static void crc32c_make_tables(void) {
    for (uint32_t byte = 0; byte < 256; byte++) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (CRC32C_POLY & (0u - (crc & 1u)));
        crc32c_table[byte] = crc;
    }
    crc32c_powers[0] = 1u << 30; /* x^1 */
    for (int k = 1; k < 64; k++) crc32c_powers[k] = crc32c_multiply(crc32c_powers[k - 1], crc32c_powers[k - 1]);
}

/* The CRC of A followed by `length` more bytes whose CRC is `second`,
   given `first`, the CRC of A alone (zlib's crc32_combine, for CRC-32C). */
static uint32_t crc32c_combine(uint32_t first, uint32_t second, size_t length) {
    uint32_t shift = 1u << 31; /* x^0 */
    for (int k = 3; length != 0; length >>= 1, k++) {
        if (length & 1) shift = crc32c_multiply(crc32c_powers[k], shift);
    }
    return crc32c_multiply(shift, first) ^ second;
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

/* Three lanes at once: the instruction takes three cycles but can start
   every cycle, so one lane leaves two thirds of it idle. The lanes' CRCs
   are joined with `crc32c_combine`. Takes and returns a finished CRC. */
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware_lanes(uint32_t crc, const unsigned char *bytes, size_t length) {
    size_t lane = (length / 3) & ~(size_t)7;
    const unsigned char *second = bytes + lane, *third = bytes + 2 * lane;
    uint64_t a = ~crc, b = 0xFFFFFFFFu, c = 0xFFFFFFFFu;
    for (size_t offset = 0; offset < lane; offset += 8) {
        uint64_t x, y, z;
        memcpy(&x, bytes + offset, 8);
        memcpy(&y, second + offset, 8);
        memcpy(&z, third + offset, 8);
        a = __builtin_ia32_crc32di(a, x);
        b = __builtin_ia32_crc32di(b, y);
        c = __builtin_ia32_crc32di(c, z);
    }
    size_t rest = length - 2 * lane;
    uint32_t last = ~crc32c_hardware((uint32_t)c, third + lane, rest - lane);
    uint32_t joined = crc32c_combine(~(uint32_t)a, ~(uint32_t)b, lane);
    return crc32c_combine(joined, last, rest);
}
#endif

/* Below this many bytes, joining lanes costs more than it saves. */
#define CRC32C_LANES_FROM 4096

uint32_t relais_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) {
        if (length >= CRC32C_LANES_FROM) return crc32c_hardware_lanes(crc, data, length);
        return ~crc32c_hardware(~crc, data, length);
    }
#endif
    return ~crc32c_software(~crc, data, length);
}

int relais_lower_thread_priority(void) {
#ifdef SCHED_IDLE
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, SCHED_IDLE, &param);
#else
    return 0;
#endif
}
