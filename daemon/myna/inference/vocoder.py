"""Vocoder: the STFT-predicting graph per frame chunk, then numpy inverse FFT and overlap-add, streamed.

Graph contract: inputs ``mel`` float32 [1, F, M] and ``speaker`` float32 [1, S]; outputs, each float32
[1, F, n_fft // 2 + 1], in one of two conventions (``voices.VOCODER_OUTPUTS``):

- ``stft_real``, ``stft_imag``: the complex STFT directly (the placeholder voice);
- ``log_magnitude``, ``phase_x``, ``phase_y``: spectrum = ``exp(min(log_magnitude, LOG_MAGNITUDE_MAX)) ·
  (phase_x + i·phase_y) / sqrt(phase_x² + phase_y² + PHASE_EPS)`` (trained voices, tools/voice/vocoder.py).

Like the decoder it runs on F-frame windows with ``overlap`` context frames on each side and only the
middle frames are used.

Synthesis (numpy): each frame t is ``irfft(spectrum, n_fft)`` times a periodic Hann window of
``win_length`` centred in ``n_fft``, added at sample ``t*hop - n_fft/2`` (centred frames), and divided
by the steady-state window-square sum ``sum(w²)/hop``.  A sample is final once every frame that
covers it has been added, so after each chunk all samples before ``(last_frame+1)*hop - n_fft/2`` are
emitted.  The first and last ``n_fft/2`` samples of a chunk fade in and out (fewer frames overlap
there), which also keeps chunk boundaries free of clicks.  Output is clipped to [-1, 1].
"""

from __future__ import annotations

import logging

import numpy as np

from .. import errors
from ..voices import VOCODER_OUTPUTS, AudioSpec
from .runtime import Graph

_LOGGER = logging.getLogger(__name__)

LOG_MAGNITUDE_MAX = 7.0
"""Log magnitudes are clamped here before ``exp`` (training clamps identically): e^7 ≈ 1100 is above any
real bin (a full-scale sine gives sum(window)/2 = 256 with n_fft 1024), and it caps INT8 outliers."""
PHASE_EPS = 1e-6
"""Added to ``phase_x² + phase_y²`` before the square root, as in training."""


def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` zero-padded to ``n_fft``, centred."""
    n = np.arange(win_length, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    padded = np.zeros(n_fft, np.float64)
    start = (n_fft - win_length) // 2
    padded[start : start + win_length] = window
    return padded.astype(np.float32)


class Vocoder:
    """Runs the vocoder graph and turns its STFT frames into finished samples, chunk by chunk."""

    def __init__(self, graph: Graph, audio: AudioSpec, overlap: int) -> None:
        """Wrap a loaded vocoder Graph and preallocate the overlap-add and output buffers."""
        self.graph = graph
        self.frame_chunk = int(graph.inputs["mel"].shape[1])
        self.overlap = overlap
        self.hop_frames = self.frame_chunk - 2 * overlap
        self.hop = audio.hop_length
        self.n_fft = audio.n_fft
        if self.hop_frames * self.hop < self.n_fft:
            raise errors.VoicePackError(
                f"vocoder chunk of {self.hop_frames} frames is shorter than n_fft {self.n_fft}; use a larger frame_chunk"
            )
        window = hann_window(audio.win_length, audio.n_fft)
        self._window = window
        self._norm = np.float32(self.hop / float(np.sum(window.astype(np.float64) ** 2)))
        bins = self.n_fft // 2 + 1
        self._spectrum = np.zeros((self.hop_frames, bins), np.complex64)
        names = set(graph.outputs)
        convention = next((c for c in VOCODER_OUTPUTS if set(c) <= names), None)
        if convention is None:
            raise errors.VoicePackError(f"vocoder outputs {sorted(names)} match no convention of {VOCODER_OUTPUTS}")
        self._polar = convention == VOCODER_OUTPUTS[1]
        # Scratch for the polar convention's magnitude and phase norm (no allocation per chunk).
        self._magnitude = np.zeros((self.hop_frames, bins), np.float32)
        self._scratch = np.zeros((self.hop_frames, bins), np.float32)
        self._ola = np.zeros(self.hop_frames * self.hop + self.n_fft, np.float32)
        self._block = np.zeros(self.hop_frames * self.hop + self.n_fft, np.float32)
        self._frames = np.zeros((self.hop_frames, self.n_fft), np.float32)
        self._chunk = 0
        self._total_frames = 0

    def start(self, total_frames: int) -> None:
        """Begin an utterance of ``total_frames`` frames."""
        self._ola.fill(0.0)
        self._chunk = 0
        self._total_frames = total_frames

    def run(self, mel_window: np.ndarray) -> np.ndarray:
        """Vocode one window of mel [F, M] (context included); return the samples it finished.

        The returned array is a view of a preallocated buffer, valid until the next call.
        """
        np.copyto(self.graph.inputs["mel"][0], mel_window)
        self.graph.run()
        k, v, hop, n_fft = self._chunk, self.hop_frames, self.hop, self.n_fft
        first = k * v
        count = max(0, min(v, self._total_frames - first))
        o = self.overlap
        spectrum = self._spectrum[:count]
        if self._polar:
            self._polar_spectrum(o, count, spectrum)
        else:
            spectrum.real = self.graph.outputs["stft_real"][0, o : o + count]
            spectrum.imag = self.graph.outputs["stft_imag"][0, o : o + count]
        frames = _irfft_into(spectrum, n_fft, self._frames[:count])
        frames *= self._window
        ola = self._ola
        for i in range(count):
            ola[i * hop : i * hop + n_fft] += frames[i]
        last = first + v >= self._total_frames
        # Buffer index 0 is global sample first*hop - n_fft/2.
        begin = n_fft // 2 if k == 0 else 0
        end = self._total_frames * hop - first * hop + n_fft // 2 if last else v * hop
        length = max(0, end - begin)
        block = self._block[:length]
        np.multiply(ola[begin:end], self._norm, out=block)
        np.clip(block, -1.0, 1.0, out=block)
        # Keep the unfinished tail for the next chunk.
        ola[:n_fft] = ola[v * hop : v * hop + n_fft]
        ola[n_fft:] = 0.0
        self._chunk += 1
        return block

    def _polar_spectrum(self, o: int, count: int, spectrum: np.ndarray) -> None:
        """Fill ``spectrum`` from log_magnitude/phase_x/phase_y frames o..o+count, in place."""
        outputs = self.graph.outputs
        log_mag = outputs["log_magnitude"][0, o : o + count]
        px = outputs["phase_x"][0, o : o + count]
        py = outputs["phase_y"][0, o : o + count]
        scale, norm = self._magnitude[:count], self._scratch[:count]
        np.minimum(log_mag, LOG_MAGNITUDE_MAX, out=scale)
        np.exp(scale, out=scale)
        np.multiply(px, px, out=norm)
        norm += PHASE_EPS
        # norm += py², through the real part of the spectrum as scratch (it is overwritten below).
        np.multiply(py, py, out=spectrum.real)
        norm += spectrum.real
        np.sqrt(norm, out=norm)
        scale /= norm
        np.multiply(px, scale, out=spectrum.real)
        np.multiply(py, scale, out=spectrum.imag)


# NumPy 2 transforms complex64 in single precision straight into a preallocated array; NumPy 1
# (the tflite-runtime extra for 32-bit boards pins numpy<2) has no ``out=``, so it allocates there.
_FFT_HAS_OUT = int(np.__version__.split(".")[0]) >= 2


def _irfft_into(spectrum: np.ndarray, n_fft: int, out: np.ndarray) -> np.ndarray:
    """Inverse real FFT of each row of ``spectrum`` into ``out`` (float32), allocating only on NumPy 1."""
    if _FFT_HAS_OUT:
        return np.fft.irfft(spectrum, n=n_fft, axis=-1, out=out)
    out[...] = np.fft.irfft(spectrum, n=n_fft, axis=-1)
    return out
