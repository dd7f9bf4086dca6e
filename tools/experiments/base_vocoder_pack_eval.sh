#!/usr/bin/env bash
# Session 8: repack with base's own vocoder; float twin of base; evaluate and bench base.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
# The shipped model card's training notes, repeated so the repacked card keeps them.
NOTES=(--training-note "Vocoders (both tiers): after their CPU runs, fine-tuned 7.3 min (about 8,000 steps at batch 32, GAN losses throughout) on one NVIDIA H200 with scripts/device-vocoder-gta.sh, on the acoustic models' teacher-forced mels of 18 min of the corpus (joe 12 min, 0.4 min of every other speaker; tools/pack_vocoder_data.py). small started from its CPU step 33,778 (29,100 reconstruction + 3,700 GAN steps), tiny from its CPU step 20,000; the step and minutes in the table are the fine-tune's."
       --training-note "Acoustic small: the 62-minute CPU run's step 4,500, continued 63 min on 1 thread (train_acoustic.py --init … --init-step 4500 --speaker-table: the speaker rows stay frozen, so adapters and the tiny tier keep their vectors)."
       --training-note "The small tier's vocoder was fine-tuned on the teacher-forced mels of the step-4,500 acoustic model, not of the continued one.")
BASE_NOTE="Acoustic base: 5.48 M parameters, trained from scratch for 158 min on CPU over two sessions (1 thread to step 3,267, then 2 threads; best.pt is step 9000; train_acoustic.py --tier base --max-minutes 158 --resume), speaker rows frozen to the small tier's (--speaker-table), so every adapter fits all three tiers."
VOC_NOTE="Vocoder base: the small tier's GPU-tuned vocoder (with its discriminators) fine-tuned 50 min on 2 CPU threads on the base acoustic model's teacher-forced mels of the same 18 min (train_vocoder.py --gta out/acoustic-base/best.pt --init … --batch 32 --adv-start 1 --lr 2e-4 --max-minutes 50; 4,018 steps, GAN losses throughout); it keeps small's 64-frame chunks with 12 frames of overlap."
time $PY tools/make_voice_pack.py --pack-id myna-en --out out/myna-en-s8 --features out/features --datacard /work/corpus-run/datacard.json \
  --tier tiny=out/acoustic-tiny/best.pt,out/vocoder-gta/tiny/final.pt \
  --tier small=out/acoustic-small-ft/best.pt,out/vocoder-gta/small/final.pt \
  --tier base=out/acoustic-base/best.pt,out/vocoder-gta-base/base/final.pt \
  --default-voice joe --int8-fc-per-channel --int8-ranges mse --int8-equalize 0.5 "${NOTES[@]}" --training-note "$BASE_NOTE" --training-note "$VOC_NOTE" > out/pack-s8.log 2>&1
$PY - <<'PYEOF'
import json
a = json.load(open("models/myna-en/manifest.json"))["tiers"]; b = json.load(open("out/myna-en-s8/manifest.json"))["tiers"]
for t in ("tiny", "small", "base"):
    same = {r: a[t]["graphs"][r]["sha256"] == b[t]["graphs"][r]["sha256"] for r in a[t]["graphs"]}
    print("tier", t, "graphs byte-identical to the shipped ones:", same)
PYEOF
time $PY tools/make_voice_pack.py --pack-id myna-en --out out/myna-en-s8-float-base --features out/features --datacard /work/corpus-run/datacard.json \
  --tier base=out/acoustic-base/best.pt,out/vocoder-gta-base/base/final.pt --default-voice joe --precision float32 > out/pack-s8-float.log 2>&1
O=out/eval/s8-base; mkdir -p $O
$PY tools/evaluate.py --myna-voice joe --tier base --voices out/myna-en-s8 --reference-wavs out/eval/joe-noisy --speaker-reference out/eval/joe-noisy --save-wavs $O/base-int8 --out $O --name myna-joe-base-session8 > $O/eval.log 2>&1
grep -E '"wer_corpus"|"dnsmos_p808"|"speaker_similarity"|"mcd_db"' $O/eval.log | head
$PY tools/evaluate.py --myna-voice joe --tier base --voices out/myna-en-s8-float-base --render-only --save-wavs $O/base-float --out $O --name base-float --plot 0 > $O/render-float.log 2>&1
$PY tools/evaluate.py --wavs $O/base-int8 --reference-wavs $O/base-float --no-asr --no-dnsmos --out $O --name mcd-base-int8-vs-float --plot 0 > $O/mcd.log 2>&1
grep mcd_db $O/mcd.log | head -1
$PY tools/evaluate.py --wavs $O/base-float --no-asr --out $O --name dnsmos-base-float --plot 0 > $O/dns.log 2>&1
grep dnsmos_p808 $O/dns.log | head -1
$PY tools/bench.py --graphs out/myna-en-s8 out/myna-en-s8-float-base --tier base --markdown $O/graphs-int8-vs-float-base-session8.md > $O/graphs.log 2>&1
tail -8 $O/graphs-int8-vs-float-base-session8.md
echo PIPELINE-DONE
