"""Audio sinks: ALSA (preallocated period ring), WAV file, null."""
