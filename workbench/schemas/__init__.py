"""The wire types of the areas that are one module (``workbench/users.py``,
``invitations.py``, ``quotas.py``, ``images.py``): ``workbench.schemas.<module>`` holds the
pydantic bodies its routes read and answer, as ``workbench/<area>/schemas.py`` does for an
area that is a package; ``workbench.schemas.common`` holds what the bodies of every area
share. Like those, these modules import only pydantic, the standard library and other
light modules, so the client loads none of the server's packages."""
