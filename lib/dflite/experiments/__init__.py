"""The studies' run graphs, as jobs of one protocol (`engine.jobs.Job`: key, needs, done, train, row).

- `dense`: a registry model trained with a recipe (notebook 02's baselines; every study's dense references);
- `lottery`: a ticket study's dense run, then IMP, one-shot, random-reinit and random-mask runs per level;
- `structured`: Taylor-pruned and distilled variants of a student, step by step;
- `transfer`: tickets carried to other data, and runs that never saw one manipulation method.

A study module (`studies/`) builds its jobs from the profile, hands them to `engine.jobs.run_jobs` and reads
their rows back; a new kind of run is one module here with its job classes.
"""
