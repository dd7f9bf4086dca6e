"""Workstation tools for the neural grapheme-to-phoneme model: data split, training, INT8 export, evaluation."""
