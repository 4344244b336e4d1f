# shellcheck shell=bash
# Sourced by .ci/run and .ci/oldest.sh.
#
# pytest_no_skips COMMAND...: run a pytest command, showing its output; fail
# when it fails, when it collects no test (pytest's exit code 5, which CI
# would otherwise count as "ran no test") or when its summary line reports
# skipped tests: every test must run in CI, so a missing optional
# dependency is an install bug there, not a reason to skip. The skip
# reasons are in pytest's "short test summary info" (-ra, set in
# pyproject.toml).
pytest_no_skips() {
    local log status summary
    log=$(mktemp)
    set +e
    "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -eq 5 ]; then
        echo "pytest collected no tests: failing CI" >&2
        return 1
    fi
    if [ "$status" -ne 0 ]; then
        return "$status"
    fi
    summary=$(grep -E '(passed|failed|skipped|error|errors)\b.* in [0-9.]+s' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$summary" ]; then
        echo "no pytest summary line found: failing CI" >&2
        return 1
    fi
    if grep -qE '\b[0-9]+ skipped\b' <<<"$summary"; then
        echo "pytest skipped tests ($summary): CI needs every test to run;" \
            "see the SKIPPED lines above for why" >&2
        return 1
    fi
}
