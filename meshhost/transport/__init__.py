"""Encrypted transport: Noise XXpsk3 sessions between hosts over TCP."""
