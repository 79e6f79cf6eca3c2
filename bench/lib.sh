# Shared helpers for benchmarks: timing in milliseconds and medians.
# timed CMD...: runs CMD with its output thrown away and prints its wall
# time in ms.  The clock is bash's own ($EPOCHREALTIME) and nothing is
# started between its two readings: the timer before forked `date` and
# `awk`, which put ~11 ms into every sample (a quarter of one of our builds).
timed() { timed_out /dev/null "$@"; }

# timed_out FILE CMD...: the same, CMD's standard output kept in FILE.
timed_out() {
	local out=$1 t0 t1
	shift
	t0=${EPOCHREALTIME/[.,]/}
	"$@" >"$out" 2>/dev/null
	t1=${EPOCHREALTIME/[.,]/}
	printf '%d.%03d\n' $(((t1 - t0) / 1000)) $(((t1 - t0) % 1000))
}

# median and p95 of numbers on stdin
stats() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; i=int(NR*0.95+0.5); if(i<1)i=1; if(i>NR)i=NR; printf "%.2f %.2f\n", m, a[i]}'; }

# row WHAT OURS PEER_NAME PEER RATIO AIM: one line of the table (tab-separated)
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"; }
