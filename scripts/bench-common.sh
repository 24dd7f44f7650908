# Sourced by the benchmark scripts.

# Makes and prints a fresh folder for one benchmark's files: bench_workdir PREFIX.
# It lies under BENCH_DIR (default: $TMPDIR or /tmp, then relais-bench), a folder
# marked for ext4's Orlov allocator as a top of a hierarchy (chattr +T), so each
# run's folder, and the files made in it, land in a block group of their own.
# Without the mark they share the groups an earlier run deleted thousands of
# files from, and on ext4 without a journal (this machine's root filesystem) every
# inode allocated there skips the inodes deleted in the last 60 s (360 s while their
# table block is unwritten) one by one: up to a millisecond per new file.
bench_workdir() {
  local base=${BENCH_DIR:-${TMPDIR:-/tmp}/relais-bench} work
  mkdir -p "$base" && chmod 755 "$base"
  chattr +T "$base" 2>/dev/null || true
  work=$(mktemp -d "$base/$1.XXXXXX")
  chmod 755 "$work"  # Postfix daemons must reach their queue
  echo "$work"
}

# Waits until something listens on 127.0.0.1:PORT (10 s at most).
wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# The CPU time (clock ticks) and context switches so far of process PID, all threads.
process_usage() {
  echo "$(awk '{print $14 + $15}' /proc/"$1"/stat) $(cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}')"
}

# Prints to stderr LABEL's CPU time and context switches per message
# between two process_usage readings: per_message_usage LABEL MESSAGES BEFORE AFTER
per_message_usage() {
  local t0 c0 t1 c1
  read -r t0 c0 <<< "$3"; read -r t1 c1 <<< "$4"
  printf '%s: %.0f us of CPU and %.2f context switches per message\n' "$1" \
    "$(echo "($t1 - $t0) * 1000000 / $(getconf CLK_TCK) / $2" | bc -l)" "$(echo "($c1 - $c0) / $2" | bc -l)" >&2
}
