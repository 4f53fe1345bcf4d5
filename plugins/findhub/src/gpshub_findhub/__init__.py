"""gpshub-findhub: the trackers and phones of a Google Find Hub account as a gpshub source."""
