#!/bin/sh
# The compiler launcher of simdattn_add_isa() (cmake/SimdattnIsas.cmake): runs the compile
# command, then seals the object it wrote: every global symbol but the entry points becomes
# local and the COMDAT groups are dropped, so that no inline function or template this unit
# compiled with its ISA's flags can be merged with, or stand in for, another unit's copy.
#
#   seal_isa_object.sh OBJCOPY ENTRY_POINT_WILDCARD... -- COMPILER ARGUMENTS...
set -e
objcopy=$1
shift
keep=""
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  keep="$keep --keep-global-symbol=$1"
  shift
done
if [ "$#" -eq 0 ]; then
  echo "seal_isa_object.sh: no '--' before the compile command" >&2
  exit 2
fi
shift
"$@"
# The object is the argument after -o.
object=""
previous=""
for argument in "$@"; do
  if [ "$previous" = "-o" ]; then object=$argument; fi
  previous=$argument
done
if [ -z "$object" ]; then
  echo "seal_isa_object.sh: no -o in the compile command" >&2
  exit 2
fi
# $keep is split on purpose: one option per wildcard (wildcards hold no blanks).
# shellcheck disable=SC2086
"$objcopy" --remove-section=.group --wildcard $keep "$object" "$object.sealed"
mv "$object.sealed" "$object"
