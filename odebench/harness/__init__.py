"""Where jobs run: executors (in this process, local workers, a Dask cluster), the worker
template that isolates each job in a forked child, and the sweep that records every job into one
results file. What a job is and how it runs is `odebench.jobs`.
"""
