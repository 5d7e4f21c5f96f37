"""Faces on the edge: camera frames to keyed pseudonyms or local stranger tracks; nothing else leaves."""
