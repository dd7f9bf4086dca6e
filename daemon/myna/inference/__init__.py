"""TFLite inference: the runtime shim, the acoustic graphs and the vocoder with numpy iSTFT."""
