#!/usr/bin/env bash
# List commits whose message has a subject but no body (CONTRIBUTING.md, "Commit
# messages"). Report only: a subject can say why on its own, so this never fails
# and CI does not run it. Usage: scripts/check-commits.sh [REVISION-RANGE]
# (default: the last 20 commits, e.g. scripts/check-commits.sh origin/main..HEAD).
set -euo pipefail
cd "$(dirname "$0")/.."
range=${1:-HEAD~20..HEAD}
total=0
bare=0
while IFS= read -r -d '' entry; do
  entry=${entry#$'\n'} # git log ends each entry with a newline after the NUL
  [[ -z $entry ]] && continue
  sha=${entry%%$'\n'*}
  rest=${entry#*$'\n'}
  subject=${rest%%$'\n'*}
  body=""
  [[ $rest == *$'\n'* ]] && body=${rest#*$'\n'}
  total=$((total + 1))
  if [[ -z ${body//[[:space:]]/} ]]; then
    bare=$((bare + 1))
    printf '%s  %s\n' "${sha:0:10}" "$subject"
  fi
done < <(git log --no-merges --format='%H%n%s%n%b%x00' "$range")
echo "check-commits: $bare of $total commits in $range have no body (does the subject say why?)" >&2
