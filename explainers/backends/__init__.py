"""Model backends behind SegmentationAdapter: one per framework (see explainers.backends.base)."""
