# Sourced by the benchmark scripts.

# Waits until something listens on 127.0.0.1:PORT (10 s at most).
wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
