#!/usr/bin/env bash
# Peer benchmark: picojoule's `cargo bench --bench perf` against the PyTorch CPU model in
# spikegpt_torch.py (SpikeGPT-216M shapes, fp32, batch 1, token by token, 2 threads),
# alternating A B A B A B, then a table of tokens/s and ratios per round. Run by hand
# after benches/peer/setup.sh; CI never runs it.
#
#   benches/peer/run.sh
#
# Environment: PEER_VENV (default /tmp/venv-peer), PEER_TOKENS (timed tokens per
# measurement in both, default 16), PEER_ROUNDS (default 3), PEER_NB (1, the default: also
# time NeuroBench's re-run procedure on the reference form, the slowest mode; 0: skip it).
# PEER_ONE_THREAD (1, the default: also time the plain reference form on one PyTorch thread,
# which does not depend on a second free core; 0: skip it). Raw outputs are kept in PEER_OUT
# (default a new temporary folder, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${PEER_VENV:-/tmp/venv-peer}"
TOKENS="${PEER_TOKENS:-16}"
ROUNDS="${PEER_ROUNDS:-3}"
NB="${PEER_NB:-1}"
ONE="${PEER_ONE_THREAD:-1}"
OUT="${PEER_OUT:-$(mktemp -d /tmp/peer-run.XXXXXX)}"
mkdir -p "$OUT"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "run.sh: no Python at $PY; run benches/peer/setup.sh first (or set PEER_VENV)" >&2
    exit 2
fi
echo "building the perf bench..." >&2
cargo bench --bench perf --no-run >/dev/null 2>&1 || cargo bench --bench perf --no-run
{
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
    "$PY" -c 'import torch; print("torch", torch.__version__)'
    echo "tokens per measurement: $TOKENS; rounds: $ROUNDS"
} | tee "$OUT/machine.txt"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r: picojoule (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    PICOJOULE_PERF_TOKENS="$TOKENS" cargo bench --bench perf 2>/dev/null >"$OUT/picojoule-$r.txt"
    echo "round $r: pytorch   (load: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$PY" benches/peer/spikegpt_torch.py --tokens "$TOKENS" --modes plain,hooks \
        --forms reference,non_spiking --threads 2 >"$OUT/pytorch-$r.jsonl"
    if [ "$NB" = 1 ]; then
        "$PY" benches/peer/spikegpt_torch.py --tokens "$TOKENS" --modes neurobench \
            --forms reference --threads 2 >>"$OUT/pytorch-$r.jsonl"
    fi
    if [ "$ONE" = 1 ]; then
        "$PY" benches/peer/spikegpt_torch.py --tokens "$TOKENS" --modes plain \
            --forms reference --threads 1 >>"$OUT/pytorch-$r.jsonl"
    fi
    cut -d' ' -f1-3 /proc/loadavg >"$OUT/load-$r.txt"
done
"$PY" - "$OUT" "$ROUNDS" <<'PYEOF'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for r in range(1, rounds + 1):
    pj = {}
    for line in open(f"{out}/picojoule-{r}.txt"):
        f = line.split()
        if f and f[0] in ("reference", "non_spiking", "spike_driven"):
            pj[f[0]] = float(f[1])
    pt = {}
    for line in open(f"{out}/pytorch-{r}.jsonl"):
        rec = json.loads(line)
        mode = rec["mode"] if rec["threads"] == 2 else f'{rec["mode"]}-{rec["threads"]}t'
        pt[(rec["form"], mode)] = rec
    for form in ("reference", "non_spiking"):
        rows.setdefault(form, []).append((r, pj.get(form), pt))
fmt = lambda v: "-" if v is None else f"{v:.2f}"
ratio = lambda a, b: "-" if a is None or b is None else f"{a / b:.2f}x"
for form, rs in rows.items():
    print(f"\nform {form}: tokens/s")
    print(f"{'round':>5} {'picojoule':>10} {'torch':>8} {'+hooks':>8} {'+nb-proc':>9}"
          f" {'torch-1t':>9} {'pj/torch':>9} {'pj/hooks':>9} {'pj/nb-proc':>10} {'pj/torch-1t':>11}")
    for r, p, pt in rs:
        t = {m: pt.get((form, m), {}).get("tokens_per_s")
             for m in ("plain", "hooks", "neurobench", "plain-1t")}
        print(f"{r:>5} {fmt(p):>10} {fmt(t['plain']):>8} {fmt(t['hooks']):>8} {fmt(t['neurobench']):>9}"
              f" {fmt(t['plain-1t']):>9} {ratio(p, t['plain']):>9} {ratio(p, t['hooks']):>9}"
              f" {ratio(p, t['neurobench']):>10} {ratio(p, t['plain-1t']):>11}")
last = rows["reference"][-1][2]
h = last.get(("reference", "hooks")) or last.get(("reference", "neurobench"))
if h:
    print("\nPyTorch hook counts per token (reference form, last round):")
    for k in ("dense_synops_per_token", "effective_macs_per_token", "effective_acs_per_token",
              "neuron_updates_per_token", "spikes_per_token"):
        print(f"  {k} {h[k]:.0f}")
print(f"\nraw outputs in {out}")
PYEOF
