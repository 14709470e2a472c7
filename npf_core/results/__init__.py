"""Results as data and files: a configuration's report, histograms and intervals (stats),
the results file (store), comparisons, the instance type (imds)."""
