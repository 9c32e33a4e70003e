"""tokenmerge.audio: Token Merging for spectrogram ViTs (AudioMAE/AST layout).

Not implemented yet; see the audio issue.
"""
