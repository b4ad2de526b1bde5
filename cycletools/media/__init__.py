"""Media adapters: video files (PyAV), and later animations and cameras."""
