"""The cluster: the machines runs are placed on, what runs on each, and draining one."""
