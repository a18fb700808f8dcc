#!/usr/bin/env bash
# tools/paired-gains on hand-made run directories: the pairing by seed, the three
# differences and their t intervals, checked against values computed by hand.
set -euo pipefail
tool="$1/tools/paired-gains"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
n=0
run() {  # kind seed f1 [combine]
  n=$((n + 1))
  mkdir -p "$dir/r$n"
  case $1 in
    CE) loss='{"kd_weight": 0}' ;;
    KD) loss='{"kd_weight": 1, "kd_loss": "kl"}' ;;
    ST) loss='{"kd_weight": 1, "kd_loss": "hard"}' ;;
  esac
  [[ -n ${4:-} ]] && loss="${loss%\}}, \"combine\": \"$4\"}"
  echo "{\"stage\": \"student\", \"dataset\": {\"name\": \"runne\"}, \"params\": {\"arch\": \"${arch:-sru}\", \"hidden\": 64, \"seed\": $2, \"loss\": $loss}}" >"$dir/r$n/run.json"
  echo "{\"metrics\": {\"f1\": $3}}" >"$dir/r$n/result.json"
}
run CE 1 0.40; run CE 2 0.42; run CE 3 0.44
run KD 1 0.45; run KD 2 0.46; run KD 3 0.50
run ST 1 0.41; run ST 2 0.45; run ST 3 0.45
mkdir -p "$dir/unfinished" && echo '{"stage": "student"}' >"$dir/unfinished/run.json"
out=$("$tool" "$dir")
echo "$out"
# KD - CE: 5, 4, 6 -> mean 5, sd 1, half 4.303 / sqrt(3) = 2.48; ST - CE: 1, 3, 1 -> sd 1.155,
# half 2.87; KD - ST: 4, 1, 5 -> sd 2.082, half 5.17
expected='| runne | sru | 64 | - | - | 42.00 | 47.00 | 43.67 | +5.00 [+2.52, +7.48] | +1.67 [-1.20, +4.54] | +3.33 [-1.84, +8.50] | 3 |'
grep -qxF -- "$expected" <<<"$out" || { echo "expected row missing: $expected"; exit 1; }

# A teacher ensemble's students: one row per combination rule beside the same CE twin, and
# the rules against each other. The LSTM's CE 0.30, 0.32; mean_logits 0.35, 0.38 (KD - CE 5, 6:
# sd 0.707, half 12.706 * 0.5 = 6.35); mean_probs 0.36, 0.37 (6, 5: the same interval);
# mean_probs - mean_logits +1, -1 -> mean 0, sd 1.414, half 12.706 * 1 = 12.71.
rm -rf "$dir"/r*
arch=lstm
run CE 1 0.30; run CE 2 0.32
run KD 1 0.35 mean_logits; run KD 2 0.38 mean_logits
run KD 1 0.36 mean_probs; run KD 2 0.37 mean_probs
out=$("$tool" "$dir")
echo "$out"
for expected in \
  '| runne | lstm | 64 | - | mean_logits | 31.00 | 36.50 | - | +5.50 [-0.85, +11.85] | - | - | 2 |' \
  '| runne | lstm | 64 | - | mean_probs | 31.00 | 36.50 | - | +5.50 [-0.85, +11.85] | - | - | 2 |' \
  '| runne | lstm | 64 | - | KD | 36.50 | 36.50 | +0.00 [-12.71, +12.71] | 2 |'; do
  grep -qxF -- "$expected" <<<"$out" || { echo "expected row missing: $expected"; exit 1; }
done
