# Shared helpers for benchmarks: timing in milliseconds and medians.
now_ms() { date +%s%N | awk '{printf "%.3f\n", $1 / 1e6}'; }

# median and p95 of numbers on stdin
stats() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; i=int(NR*0.95+0.5); if(i<1)i=1; if(i>NR)i=NR; printf "%.2f %.2f\n", m, a[i]}'; }

# row WHAT OURS PEER_NAME PEER RATIO AIM: one line of the table (tab-separated)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
