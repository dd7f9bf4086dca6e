#!/usr/bin/env bash
# Time-boxed GAN fine-tune of the small and tiny vocoders on teacher-forced mels, run on a lent GPU.
#
# One call of the device tool (both tiers share the GPU, in parallel); the inputs travel in gpu/
# (git-ignored, see docs/design/voice-training.md "GPU fine-tune"):
#   python tools/pack_vocoder_data.py --features out/features --corpus /work/corpus-run \
#       --out gpu/vocoder-data.npz --minutes joe=12 --minutes '*=0.4' --valid joe=16
#   python tools/slim_checkpoint.py out/vocoder-small/last.pt gpu/vocoder-small-gan.pt --keep-disc
# Results land in $OUT: <tier>-final.pt and <tier>-best.pt (weights only), <tier>-last-disc.pt (fp16 with
# discriminators, for a later --init) and logs.tar.gz (logs, histories, curves, validation wavs).
set -u
MINUTES=${MINUTES:-7.5}
DEVICE=${DEVICE:-cuda}
PY=${PY:-python3}
OUT=${OUT:-out/device-run}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT" "$WORK"; OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1
[ "$DEVICE" = cuda ] && nvidia-smi -L
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"
common=(--pack gpu/vocoder-data.npz --device "$DEVICE" --batch "${BATCH:-32}" --segment 64 --adv-start 1
        --lr 2e-4 --warmup 200 --schedule time --max-minutes "$MINUTES" --log-every 200 --valid-every 1000
        --valid-utts 16 --save-every 2000 --threads 4)
$PY tools/train_vocoder.py "${common[@]}" --gta checkpoints/myna-en/acoustic-small.pt \
    --init gpu/vocoder-small-gan.pt --out "$WORK/small" > "$WORK/small.log" 2>&1 &
small=$!
$PY tools/train_vocoder.py "${common[@]}" --gta checkpoints/myna-en/acoustic-tiny.pt \
    --init checkpoints/myna-en/vocoder-tiny.pt --out "$WORK/tiny" > "$WORK/tiny.log" 2>&1 &
tiny=$!
# Fail fast: a run that dies while loading must not cost the whole budget.
sleep "${CHECK_AFTER:-60}"
for pid in $small $tiny; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail -n 25 "$WORK/small.log" "$WORK/tiny.log"; kill $small $tiny 2>/dev/null; exit 1
    fi
done
tail -n 3 "$WORK/small.log" "$WORK/tiny.log"
wait $small; rc_small=$?
wait $tiny; rc_tiny=$?
tail -n 6 "$WORK/small.log" "$WORK/tiny.log"
for tier in small tiny; do
    cp "$WORK/$tier/final.pt" "$OUT/$tier-final.pt"
    [ -f "$WORK/$tier/best.pt" ] && cp "$WORK/$tier/best.pt" "$OUT/$tier-best.pt"
    $PY tools/slim_checkpoint.py "$WORK/$tier/last.pt" "$OUT/$tier-last-disc.pt" --keep-disc
done
(cd "$WORK" && tar -czf "$OUT/logs.tar.gz" --ignore-failed-read small.log tiny.log small/history.json \
    tiny/history.json small/curves.png tiny/curves.png small/samples tiny/samples)
exit $(( rc_small || rc_tiny ))
