"""Image files in and out, and the unpaired training dataset."""
