"""Tests of ladd.cli, one file per module of the package (test_commands: the root app and
options.py; test_console: console.py; test_sets, test_labels, test_training: the command
groups; test_whole_pipeline: every group end to end on `shapes`)."""
