"""Shared plumbing for the numbered scripts: config loading, atomic I/O, stage contracts."""
