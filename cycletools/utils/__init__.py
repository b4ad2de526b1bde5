"""Small helpers shared by the rest of the package (no model or data logic here)."""
