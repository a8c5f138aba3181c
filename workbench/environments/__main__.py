from workbench.environments.cli import envs

envs(prog_name="python -m workbench.environments")
