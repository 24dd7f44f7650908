#ifndef RELAIS_CSYSTEMSHIMS_H
#define RELAIS_CSYSTEMSHIMS_H

#include <stddef.h>
#include <stdint.h>

/// Flushes every dirty page and inode of the filesystem holding `fd`
/// (Linux syncfs(2)); one call makes a whole batch of spool writes durable.
/// Returns 0 or -1 with errno set. Falls back to sync(2) where syncfs is missing.
int relais_syncfs(int fd);

/// CRC-32C (Castagnoli) of `length` bytes, continuing from `crc` (0 to
/// start): the seal that tells a whole spool file from one a crash cut
/// short. Uses the SSE4.2 instruction where the processor has it, from
/// 4 KiB on in three interleaved lanes joined at the end.
uint32_t relais_crc32c(uint32_t crc, const void *data, size_t length);

/// Swaps the files at `path` and `other` in one step (Linux renameat2(2)
/// with RENAME_EXCHANGE); fails with ENOENT when either is missing, so a
/// file written anew replaces its old self only if that is still there.
/// Returns 0 or -1 with errno set.
int relais_exchange(const char *path, const char *other);

/// Puts the calling thread in the lowest scheduling class (Linux
/// SCHED_IDLE): it runs only on CPU time nothing else wants. Returns 0 or
/// -1 with errno set; does nothing where the class is missing.
int relais_lower_thread_priority(void);

#endif
