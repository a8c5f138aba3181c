"""The hostile corpus: attacks on our own server as a second, ordinary user (issue 15)."""
