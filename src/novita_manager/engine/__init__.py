"""Background processing: pipelines that advance rows one step at a time under expiring leases."""
