"""The `redress` command line."""
