"""Algorithms (manual chapter 2.2): a training image and an inference image with how to run
them, published from a workspace's ``docker_image/`` tars, uploaded or pulled."""
