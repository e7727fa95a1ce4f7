"""The daily pipeline: step names, runner, run log, run context, notifications, report."""
