"""What `idp worker` runs on a schedule: retention purges, the reconciliation run, rollups."""
