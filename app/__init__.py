"""tokenmerge.app: the commands that span modalities: the ``tokenmerge`` console script and the main demo."""
