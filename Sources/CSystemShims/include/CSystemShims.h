#ifndef RELAIS_CSYSTEMSHIMS_H
#define RELAIS_CSYSTEMSHIMS_H

/// Flushes every dirty page and inode of the filesystem holding `fd`
/// (Linux syncfs(2)); one call makes a whole batch of spool writes durable.
/// Returns 0 or -1 with errno set. Falls back to sync(2) where syncfs is missing.
int relais_syncfs(int fd);

#endif
