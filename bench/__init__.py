"""Benchmarks on the production stack: ``python -m bench <name|all> [--quick]``."""

# name -> what it measures; each is the module bench/<name>.py with run(quick, latency_ms).
BENCHMARKS = {
    "time_to_access": "approval -> membership at Okta; filed -> in the approvers' queue",
    "surge": "incident surge: many engineers file, approvers bulk approve",
    "return_to_normal": "close with many members across many groups: time and 429s",
    "pages": "pages, exports and verify_audit at scale under concurrent users",
    "okta_cost": "Okta calls per hour of the reconciler and monitors",
}
