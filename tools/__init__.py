"""Cue's tooling, never shipped in the Lambda zip: packaging (artifact), the deploy rehearsal (rehearsal), the local
Lambda emulator (emulator/, `manage.py serve_lambda`), stage tooling (stages, schedules) and local AWS (local_aws).

The runtime (project/, apps/) never imports from here; this package imports the runtime freely.
"""
