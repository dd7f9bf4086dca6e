#!/usr/bin/env bash
# Session 8 A/B: small fine-tuned 40 min (1 thread each, side by side) on harvest-F0 vs the original DIO features.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
common="--tier small --init out/acoustic-small-ft/best.pt --init-step 0 --speaker-table checkpoints/myna-en/acoustic-small.pt --lr 2e-4 --warmup 50 --threads 1 --max-minutes 40"
$PY tools/train_acoustic.py --features out/features-harvest --out out/acoustic-small-hv $common > out/acoustic-small-hv.log 2>&1 &
$PY tools/train_acoustic.py --features out/features --out out/acoustic-small-dio $common > out/acoustic-small-dio.log 2>&1 &
wait
echo TRAINED
for v in hv dio; do
  feats=out/features; [ $v = hv ] && feats=out/features-harvest
  $PY tools/make_voice_pack.py --pack-id myna-en --out out/myna-en-small-$v --features $feats --datacard /work/corpus-run/datacard.json \
    --tier small=out/acoustic-small-$v/best.pt,out/vocoder-gta/small/final.pt --default-voice joe \
    --int8-fc-per-channel --int8-ranges mse --int8-equalize 0.5 > out/pack-small-$v.log 2>&1
  mkdir -p out/eval/ab-$v
  $PY tools/evaluate.py --myna-voice joe --tier small --voices out/myna-en-small-$v --reference-wavs out/eval/joe-noisy \
    --speaker-reference out/eval/joe-noisy --save-wavs out/eval/ab-$v/wavs --out out/eval/ab-$v --name small-$v --plot 0 > out/eval/ab-$v/eval.log 2>&1
  $PY tools/evaluate.py --myna-voice joe --tier small --voices out/myna-en-small-$v --render-only --pitch 0.8 --limit 20 \
    --save-wavs out/eval/ab-$v/wavs-p08 --out out/eval/ab-$v --name small-$v-p08 --plot 0 > out/eval/ab-$v/p08.log 2>&1
  grep -E '"wer_corpus"|"dnsmos_p808"|"mcd_db"|"speaker_similarity"' out/eval/ab-$v/eval.log | head -4
done
$PY tools/experiments/f0_octaves.py --files 20 --folder shipped=out/eval/s6-int8f/small-int8 \
  --folder hv=out/eval/ab-hv/wavs --folder hv-p08=out/eval/ab-hv/wavs-p08 \
  --folder dio=out/eval/ab-dio/wavs --folder dio-p08=out/eval/ab-dio/wavs-p08 2>&1 | grep -v pkg_
echo AB-DONE
