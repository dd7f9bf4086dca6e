"""Text frontend: normalize → chunk → phonemes → ids, keeping each word's span in the original text."""
