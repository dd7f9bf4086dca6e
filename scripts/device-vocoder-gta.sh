#!/usr/bin/env bash
# Time-boxed GAN fine-tune of the small and tiny vocoders on teacher-forced mels, run on a lent GPU.
#
# One call of the device tool (both tiers share the GPU, in parallel); the inputs travel in gpu/
# (git-ignored, see docs/design/voice-training.md "GPU fine-tune"):
#   python tools/pack_vocoder_data.py --features out/features --corpus /work/corpus-run \
#       --out gpu/vocoder-data.npz --minutes joe=12 --minutes '*=0.4' --valid joe=16
#   python tools/slim_checkpoint.py out/vocoder-small/last.pt gpu/vocoder-small-gan.pt --keep-disc
# Inputs can be overridden (PACK, SMALL_ACOUSTIC, SMALL_INIT, TINY_ACOUSTIC, TINY_INIT; DEVICE=cpu, PY, BATCH,
# MINUTES, CHECK_AFTER for a dry run). Results land in $OUT: <tier>-final.pt and <tier>-best.pt (weights only), <tier>-last-disc.pt (fp16 with
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
common=(--pack "${PACK:-gpu/vocoder-data.npz}" --device "$DEVICE" --batch "${BATCH:-32}" --segment 64 --adv-start 1
        --lr 2e-4 --warmup 200 --schedule time --max-minutes "$MINUTES" --log-every 200 --valid-every 1000
        --valid-utts 16 --save-every 2000 --threads 4)
$PY tools/train_vocoder.py "${common[@]}" --gta "${SMALL_ACOUSTIC:-checkpoints/myna-en/acoustic-small.pt}" \
    --init "${SMALL_INIT:-gpu/vocoder-small-gan.pt}" --out "$WORK/small" > "$WORK/small.log" 2>&1 &
small=$!
$PY tools/train_vocoder.py "${common[@]}" --gta "${TINY_ACOUSTIC:-checkpoints/myna-en/acoustic-tiny.pt}" \
    --init "${TINY_INIT:-checkpoints/myna-en/vocoder-tiny.pt}" --out "$WORK/tiny" > "$WORK/tiny.log" 2>&1 &
tiny=$!
# Fail fast: a run that dies while loading must not cost the whole budget (one that already
# finished cleanly is fine).
sleep "${CHECK_AFTER:-60}"
rc_small=-1; rc_tiny=-1
kill -0 $small 2>/dev/null || { wait $small; rc_small=$?; }
kill -0 $tiny 2>/dev/null || { wait $tiny; rc_tiny=$?; }
if [ $rc_small -gt 0 ] || [ $rc_tiny -gt 0 ]; then
    tail -n 25 "$WORK/small.log" "$WORK/tiny.log"; kill $small $tiny 2>/dev/null; exit 1
fi
tail -n 3 "$WORK/small.log" "$WORK/tiny.log"
[ $rc_small -lt 0 ] && { wait $small; rc_small=$?; }
[ $rc_tiny -lt 0 ] && { wait $tiny; rc_tiny=$?; }
tail -n 6 "$WORK/small.log" "$WORK/tiny.log"
for tier in small tiny; do
    cp "$WORK/$tier/final.pt" "$OUT/$tier-final.pt"
    [ -f "$WORK/$tier/best.pt" ] && cp "$WORK/$tier/best.pt" "$OUT/$tier-best.pt"
    $PY tools/slim_checkpoint.py "$WORK/$tier/last.pt" "$OUT/$tier-last-disc.pt" --keep-disc
done
(cd "$WORK" && tar -czf "$OUT/logs.tar.gz" --ignore-failed-read small.log tiny.log small/history.json \
    tiny/history.json small/curves.png tiny/curves.png small/samples tiny/samples)
exit $(( rc_small || rc_tiny ))
