"""Workstation training of Myna voices: features, aligner, acoustic model, vocoder, export (torch lives here)."""
