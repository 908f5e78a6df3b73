"""ptdry's io layer: the archive format (save_object / load_object) and its codecs."""
