#!/bin/sh
# `make check` entry for the integration scripts (the unit tests run as
# their own programs there).
exec env OBUILD_UNIT_DIR=/nonexistent sh "${OBUILD_SRCDIR:-.}/tests/run.sh"
