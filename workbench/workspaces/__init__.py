"""Container workspaces (manual chapter 2.6): each modeler's isolated environment."""
