"""tokenmerge.video: Token Merging for spatiotemporal ViTs (MAE-ST layout).

Not implemented yet; see the video issue.
"""
